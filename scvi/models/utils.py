"""Small tensor utilities shared by the models."""

from typing import Any, Callable, Optional, Tuple

import torch

from scvi._utils import check_option

__all__ = [
    "broadcast_labels",
    "check_option",
    "enumerate_discrete",
    "iterate",
    "one_hot",
]


def iterate(obj: Any, func: Callable[[Any], Any]) -> Any:
    """Apply ``func`` to ``obj``, or to each element of a list or tuple (recursively).

    ``None`` elements are passed through unchanged.
    """
    if type(obj) in (list, tuple):
        return type(obj)(iterate(o, func) for o in obj)
    return func(obj) if obj is not None else None


def broadcast_labels(
    y: Optional[torch.Tensor], *o: torch.Tensor, n_broadcast: int = -1
) -> Tuple[torch.Tensor, ...]:
    """One-hot encode labels, or enumerate every label when they are unknown.

    Parameters
    ----------
    y
        Integer labels of shape ``(batch, 1)``, or ``None`` for an unlabelled minibatch.
    *o
        Reference tensors; when ``y`` is ``None`` each is repeated ``n_broadcast`` times
        along its first dimension so that it lines up with the enumerated labels.
    n_broadcast
        Number of label categories.

    Returns
    -------
    ``(ys, *o)`` with ``ys`` the one-hot labels.
    """
    if not len(o):
        raise ValueError("broadcast_labels needs at least one reference tensor.")
    if y is None:
        ys = enumerate_discrete(o[0], n_broadcast)
        new_o = iterate(
            o,
            lambda x: (
                x.repeat(n_broadcast, 1) if x.dim() == 2 else x.repeat(n_broadcast)
            ),
        )
    else:
        ys = one_hot(y, n_broadcast)
        new_o = o
    return (ys,) + tuple(new_o)


def one_hot(index: torch.Tensor, n_cat: int) -> torch.Tensor:
    """One-hot encode integer categories of shape ``(batch, 1)`` into ``(batch, n_cat)`` floats."""
    onehot = torch.zeros(index.size(0), n_cat, device=index.device)
    onehot.scatter_(1, index.long().view(index.size(0), -1), 1)
    return onehot


def enumerate_discrete(x: torch.Tensor, y_dim: int) -> torch.Tensor:
    """All ``y_dim`` one-hot labels, each repeated for every row of ``x`` (label-major)."""
    eye = torch.eye(y_dim, device=x.device)
    return eye.repeat_interleave(x.size(0), dim=0)
