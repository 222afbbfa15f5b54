"""Multi-head layers of gimVI (:class:`~scvi.models.JVAE`): one input head per dataset.

Parameter names (and so ``state_dict`` keys) follow scVI 0.5, so that weights saved with
the original load into these modules.
"""

from typing import Iterable, List, Optional, Tuple

import torch
from torch import nn

# Module import (not ``from ... import FCLayers``) so that ``modules.py`` can re-export
# the classes below from its top without a circular-import failure.
from scvi.models import _base_modules as modules


def _check_head(head_id: int, n_heads: int, what: str) -> None:
    if not isinstance(head_id, int) or isinstance(head_id, bool):
        raise TypeError(f"{what} must be an int, got {head_id!r}.")
    if not 0 <= head_id < n_heads:
        raise ValueError(
            f"{what}={head_id} is out of range: this module has {n_heads} heads, "
            f"numbered 0 to {n_heads - 1}."
        )


class MultiEncoder(nn.Module):
    """Encoder with one input stack per dataset followed by layers shared by all datasets.

    Each dataset (head) has its own fully-connected stack mapping its genes to a common
    hidden space; shared layers then map that space to a diagonal Gaussian over the latent
    space.

    Parameters
    ----------
    n_heads
        Number of datasets (input heads).
    n_input_list
        Input dimension (number of genes) of each head.
    n_output
        Latent dimension.
    n_hidden
        Width of every hidden layer.
    n_layers_individual
        Number of layers of each head's own stack.
    n_layers_shared
        Number of shared layers.
    n_cat_list
        Number of categories of each categorical covariate, fed to every layer.
    dropout_rate
        Dropout probability of the hidden layers.
    """

    def __init__(
        self,
        n_heads: int,
        n_input_list: List[int],
        n_output: int,
        n_hidden: int = 128,
        n_layers_individual: int = 1,
        n_layers_shared: int = 2,
        n_cat_list: Iterable[int] = None,
        dropout_rate: float = 0.1,
    ):
        super().__init__()
        if n_heads < 1 or len(n_input_list) < n_heads:
            raise ValueError(
                f"MultiEncoder needs n_heads >= 1 and one input dimension per head; got "
                f"n_heads={n_heads} and n_input_list={list(n_input_list)}."
            )
        self.encoders = nn.ModuleList(
            modules.FCLayers(
                n_in=n_input_list[head],
                n_out=n_hidden,
                n_cat_list=n_cat_list,
                n_layers=n_layers_individual,
                n_hidden=n_hidden,
                dropout_rate=dropout_rate,
            )
            for head in range(n_heads)
        )
        self.encoder_shared = modules.FCLayers(
            n_in=n_hidden,
            n_out=n_hidden,
            n_cat_list=n_cat_list,
            n_layers=n_layers_shared,
            n_hidden=n_hidden,
            dropout_rate=dropout_rate,
        )
        self.mean_encoder = nn.Linear(n_hidden, n_output)
        self.var_encoder = nn.Linear(n_hidden, n_output)

    def forward(
        self, x: torch.Tensor, head_id: int, *cat_list: Optional[torch.Tensor]
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encode ``x`` through head ``head_id``.

        Returns
        -------
        ``(q_m, q_v, z)``: posterior mean, variance (``exp`` of a linear map, without the
        ``1e-4`` floor of :class:`~scvi.models.modules.Encoder`, as in scVI 0.5) and a
        reparameterised sample.
        """
        _check_head(head_id, len(self.encoders), "head_id")
        hidden = self.encoder_shared(self.encoders[head_id](x, *cat_list), *cat_list)
        q_m = self.mean_encoder(hidden)
        q_v = torch.exp(self.var_encoder(hidden))
        return q_m, q_v, modules.reparameterize_gaussian(q_m, q_v)


class MultiDecoder(nn.Module):
    """Decoder shared by all datasets: latent vectors to (zero-inflated) NB parameters.

    An optional covariate-conditioned stack is followed by an optional unconditioned
    stack; with neither, the output layers read the latent vector directly.

    Parameters
    ----------
    n_input
        Latent dimension.
    n_output
        Number of genes (the union of all datasets' genes).
    n_hidden_conditioned
        Width of the conditioned layers (and of their output when shared layers follow).
    n_hidden_shared
        Width of the unconditioned layers (and of the conditioned stack's output when no
        shared layer follows).
    n_layers_conditioned
        Number of covariate-conditioned layers (0 for none).
    n_layers_shared
        Number of unconditioned layers (0 for none).
    n_cat_list
        Number of categories of each categorical covariate of the conditioned layers.
    dropout_rate
        Dropout probability of the hidden layers.
    """

    def __init__(
        self,
        n_input: int,
        n_output: int,
        n_hidden_conditioned: int = 32,
        n_hidden_shared: int = 128,
        n_layers_conditioned: int = 1,
        n_layers_shared: int = 1,
        n_cat_list: Iterable[int] = None,
        dropout_rate: float = 0.2,
    ):
        super().__init__()
        n_in = n_input
        self.px_decoder_conditioned = None
        if n_layers_conditioned:
            n_out = n_hidden_conditioned if n_layers_shared else n_hidden_shared
            self.px_decoder_conditioned = modules.FCLayers(
                n_in=n_in,
                n_out=n_out,
                n_cat_list=n_cat_list,
                n_layers=n_layers_conditioned,
                n_hidden=n_hidden_conditioned,
                dropout_rate=dropout_rate,
            )
            n_in = n_out
        self.px_decoder_final = None
        if n_layers_shared:
            self.px_decoder_final = modules.FCLayers(
                n_in=n_in,
                n_out=n_hidden_shared,
                n_cat_list=[],
                n_layers=n_layers_shared,
                n_hidden=n_hidden_shared,
                dropout_rate=dropout_rate,
            )
            n_in = n_hidden_shared
        self.px_scale_decoder = nn.Sequential(
            nn.Linear(n_in, n_output), nn.Softmax(dim=-1)
        )
        self.px_r_decoder = nn.Linear(n_in, n_output)
        self.px_dropout_decoder = nn.Linear(n_in, n_output)

    def forward(
        self,
        z: torch.Tensor,
        dataset_id: int,
        library: torch.Tensor,
        dispersion: str,
        *cat_list: Optional[torch.Tensor],
    ) -> Tuple[torch.Tensor, Optional[torch.Tensor], torch.Tensor, torch.Tensor]:
        """Return ``(px_scale, px_r, px_rate, px_dropout)``.

        ``dataset_id`` is accepted for symmetry with :class:`MultiEncoder`; the decoder is
        the same for every dataset. ``px_r`` (log inverse dispersion) is only decoded for
        ``dispersion == "gene-cell"`` and is ``None`` otherwise.
        """
        hidden = z
        if self.px_decoder_conditioned is not None:
            hidden = self.px_decoder_conditioned(hidden, *cat_list)
        if self.px_decoder_final is not None:
            hidden = self.px_decoder_final(hidden)
        px_scale = self.px_scale_decoder(hidden)
        px_dropout = self.px_dropout_decoder(hidden)
        px_rate = torch.exp(library) * px_scale
        px_r = self.px_r_decoder(hidden) if dispersion == "gene-cell" else None
        return px_scale, px_r, px_rate, px_dropout
