"""A fully-connected cell-type classifier, used alone or inside SCANVI and VAEC."""

import torch
from torch import nn

from scvi.models._base_modules import FCLayers


class Classifier(nn.Module):
    """Multi-layer perceptron mapping a vector to class probabilities (or logits).

    The network is a :class:`~scvi.models.modules.FCLayers` stack (batch norm, ReLU,
    dropout) followed by a linear layer with one output per class and, unless ``logits``
    is True, a softmax.

    Parameters
    ----------
    n_input
        Input dimension (number of genes, or latent dimension).
    n_hidden
        Width of the hidden layers.
    n_labels
        Number of classes.
    n_layers
        Number of hidden layers.
    dropout_rate
        Dropout probability of the hidden layers.
    logits
        Return unnormalised logits instead of probabilities.

    Examples
    --------
    >>> classifier = Classifier(10, n_labels=3)
    >>> probabilities = classifier(torch.randn(64, 10))
    """

    def __init__(
        self,
        n_input: int,
        n_hidden: int = 128,
        n_labels: int = 5,
        n_layers: int = 1,
        dropout_rate: float = 0.1,
        logits: bool = False,
    ):
        super().__init__()
        if n_labels < 1:
            raise ValueError(f"n_labels must be at least 1, got {n_labels}.")
        self.logits = logits
        modules = [
            FCLayers(
                n_in=n_input,
                n_out=n_hidden,
                n_layers=n_layers,
                n_hidden=n_hidden,
                dropout_rate=dropout_rate,
                use_batch_norm=True,
            ),
            nn.Linear(n_hidden, n_labels),
        ]
        if not logits:
            modules.append(nn.Softmax(dim=-1))
        self.classifier = nn.Sequential(*modules)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities (or logits) of ``x``, shape ``(batch, n_labels)``."""
        return self.classifier(x)
