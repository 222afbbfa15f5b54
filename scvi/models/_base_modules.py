"""Core neural-network building blocks: fully-connected stacks, Gaussian encoders, count decoders.

Parameter names (and so ``state_dict`` keys) follow scVI 0.5 exactly, so that weights saved
with the original load into these modules.
"""

import collections
from typing import Iterable, List, Optional, Sequence, Tuple

import torch
from torch import nn

from scvi.models.utils import one_hot


def reparameterize_gaussian(mu: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """Draw a reparameterised sample from ``Normal(mu, sqrt(var))``.

    Draws its standard normal noise exactly as ``Normal(mu, var.sqrt()).rsample()``
    does, without the distribution's argument checks.
    """
    return mu + torch.empty_like(mu).normal_() * var.sqrt()


def _covariates_one_hot(
    n_cat_list: Sequence[int], cat_list: Sequence[Optional[torch.Tensor]]
) -> List[torch.Tensor]:
    """One-hot encode the categorical covariates used by a layer stack.

    Covariates with a single category carry no information and are skipped; a covariate
    already given as a ``(batch, n_cat)`` matrix is taken to be one-hot encoded.
    """
    if len(n_cat_list) > len(cat_list):
        raise ValueError(
            f"Expected {len(n_cat_list)} categorical covariates, got {len(cat_list)}."
        )
    encoded = []
    for n_cat, cat in zip(n_cat_list, cat_list):
        if n_cat <= 1:
            continue
        if cat is None:
            raise ValueError(
                "A categorical covariate (e.g. batch_index) is required: this layer was "
                f"built with {n_cat} categories for it, but None was given."
            )
        encoded.append(cat if cat.size(-1) == n_cat else one_hot(cat, n_cat))
    return encoded


class FCLayers(nn.Module):
    """A stack of fully-connected layers, each with optional batch norm, ReLU and dropout.

    One-hot categorical covariates are concatenated to the input of *every* layer.

    Parameters
    ----------
    n_in
        Input dimension.
    n_out
        Output dimension.
    n_cat_list
        Number of categories of each categorical covariate; covariates with one
        category are ignored.
    n_layers
        Number of layers.
    n_hidden
        Width of the hidden layers.
    dropout_rate
        Dropout probability after each layer (no dropout layer when 0).
    use_batch_norm
        Whether to add a ``BatchNorm1d`` (momentum 0.01, eps 0.001) after each linear layer.
    use_relu
        Whether to add a ReLU after each layer.
    bias
        Whether the linear layers have a bias.
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        n_cat_list: Optional[Iterable[int]] = None,
        n_layers: int = 1,
        n_hidden: int = 128,
        dropout_rate: float = 0.1,
        use_batch_norm: bool = True,
        use_relu: bool = True,
        bias: bool = True,
    ):
        super().__init__()
        dims = [n_in] + (n_layers - 1) * [n_hidden] + [n_out]
        self.n_cat_list = [n if n > 1 else 0 for n in (n_cat_list or [])]
        n_cov = sum(self.n_cat_list)
        # ``None`` entries keep the sub-module indices -- and so the state_dict keys --
        # identical to scVI 0.5 whichever options are switched off.
        self.fc_layers = nn.Sequential(
            collections.OrderedDict(
                (
                    f"Layer {i}",
                    nn.Sequential(
                        nn.Linear(d_in + n_cov, d_out, bias=bias),
                        (
                            nn.BatchNorm1d(d_out, momentum=0.01, eps=0.001)
                            if use_batch_norm
                            else None
                        ),
                        nn.ReLU() if use_relu else None,
                        nn.Dropout(p=dropout_rate) if dropout_rate > 0 else None,
                    ),
                )
                for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:]))
            )
        )

    def forward(
        self, x: torch.Tensor, *cat_list: Optional[torch.Tensor], instance_id: int = 0
    ) -> torch.Tensor:
        """Apply the stack to ``x`` of shape ``(batch, n_in)`` or ``(samples, batch, n_in)``.

        Parameters
        ----------
        x
            Input tensor.
        *cat_list
            One tensor per categorical covariate: integer categories ``(batch, 1)`` or
            one-hot ``(batch, n_cat)``.
        instance_id
            Kept for signature compatibility with scVI 0.5 (which ignores it too).
        """
        covariates = _covariates_one_hot(self.n_cat_list, cat_list)
        if x.dim() == 3 and covariates:
            covariates = [c.unsqueeze(0).expand(x.size(0), -1, -1) for c in covariates]
        for block in self.fc_layers:
            for layer in block:
                if layer is None:
                    continue
                if isinstance(layer, nn.Linear):
                    if covariates:
                        x = torch.cat((x, *covariates), dim=-1)
                    x = layer(x)
                elif isinstance(layer, nn.BatchNorm1d) and x.dim() == 3:
                    x = self._batch_norm_3d(layer, x)
                else:
                    x = layer(x)
        return x

    @staticmethod
    def _batch_norm_3d(layer: nn.BatchNorm1d, x: torch.Tensor) -> torch.Tensor:
        """Batch norm over ``(samples, batch, features)``, one sample slice at a time in training.

        In training each Monte-Carlo slice is normalised with its own batch statistics (as
        scVI 0.5 does); in evaluation the running statistics make slices independent, so
        the whole tensor is normalised at once.
        """
        if layer.training:
            return torch.stack([layer(slice_x) for slice_x in x], dim=0)
        return layer(x.reshape(-1, x.size(-1))).reshape(x.shape)


class Encoder(nn.Module):
    """Encode data into a diagonal Gaussian over a latent space, and sample from it.

    Parameters
    ----------
    n_input
        Input dimension.
    n_output
        Latent dimension.
    n_cat_list
        Number of categories of each categorical covariate.
    n_layers
        Number of hidden layers.
    n_hidden
        Width of the hidden layers.
    dropout_rate
        Dropout probability of the hidden layers.
    """

    def __init__(
        self,
        n_input: int,
        n_output: int,
        n_cat_list: Optional[Iterable[int]] = None,
        n_layers: int = 1,
        n_hidden: int = 128,
        dropout_rate: float = 0.1,
    ):
        super().__init__()
        self.encoder = FCLayers(
            n_in=n_input,
            n_out=n_hidden,
            n_cat_list=n_cat_list,
            n_layers=n_layers,
            n_hidden=n_hidden,
            dropout_rate=dropout_rate,
        )
        self.mean_encoder = nn.Linear(n_hidden, n_output)
        self.var_encoder = nn.Linear(n_hidden, n_output)

    def forward(
        self, x: torch.Tensor, *cat_list: Optional[torch.Tensor]
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return the posterior mean, variance (``exp(.) + 1e-4``) and a reparameterised sample."""
        q = self.encoder(x, *cat_list)
        q_m = self.mean_encoder(q)
        q_v = torch.exp(self.var_encoder(q)) + 1e-4
        return q_m, q_v, reparameterize_gaussian(q_m, q_v)


class DecoderSCVI(nn.Module):
    """Decode latent vectors into the parameters of a (zero-inflated) negative binomial.

    Parameters
    ----------
    n_input
        Latent dimension.
    n_output
        Number of genes.
    n_cat_list
        Number of categories of each categorical covariate.
    n_layers
        Number of hidden layers.
    n_hidden
        Width of the hidden layers.
    """

    def __init__(
        self,
        n_input: int,
        n_output: int,
        n_cat_list: Optional[Iterable[int]] = None,
        n_layers: int = 1,
        n_hidden: int = 128,
    ):
        super().__init__()
        self.px_decoder = FCLayers(
            n_in=n_input,
            n_out=n_hidden,
            n_cat_list=n_cat_list,
            n_layers=n_layers,
            n_hidden=n_hidden,
            dropout_rate=0,
        )
        self.px_scale_decoder = nn.Sequential(
            nn.Linear(n_hidden, n_output), nn.Softmax(dim=-1)
        )
        self.px_r_decoder = nn.Linear(n_hidden, n_output)
        self.px_dropout_decoder = nn.Linear(n_hidden, n_output)

    def forward(
        self,
        dispersion: str,
        z: torch.Tensor,
        library: torch.Tensor,
        *cat_list: Optional[torch.Tensor],
    ) -> Tuple[torch.Tensor, Optional[torch.Tensor], torch.Tensor, torch.Tensor]:
        """Return ``(px_scale, px_r, px_rate, px_dropout)``.

        ``px_scale`` are expression frequencies (a softmax over genes), ``px_rate``
        the NB means ``exp(library) * px_scale``, ``px_dropout`` the zero-inflation logits
        and ``px_r`` the log inverse dispersion -- only for ``dispersion == "gene-cell"``,
        ``None`` otherwise.
        """
        px = self.px_decoder(z, *cat_list)
        px_scale = self.px_scale_decoder(px)
        px_dropout = self.px_dropout_decoder(px)
        px_rate = torch.exp(library) * px_scale
        px_r = self.px_r_decoder(px) if dispersion == "gene-cell" else None
        return px_scale, px_r, px_rate, px_dropout


class LinearDecoderSCVI(nn.Module):
    """Linear decoder: expression frequencies are a softmax of an affine map of the latent space.

    The batch (first covariate of ``n_cat_list``) enters as a linear offset with the last
    batch as reference.

    Parameters
    ----------
    n_input
        Latent dimension.
    n_output
        Number of genes.
    n_cat_list
        Number of categories of each categorical covariate; only the first (batch) is used.
    n_layers, n_hidden
        Unused; kept for signature compatibility with :class:`DecoderSCVI`.
    """

    def __init__(
        self,
        n_input: int,
        n_output: int,
        n_cat_list: Optional[Iterable[int]] = None,
        n_layers: int = 1,
        n_hidden: int = 128,
    ):
        super().__init__()
        n_cat_list = list(n_cat_list or [0])
        self.n_batches = n_cat_list[0]
        self.batch_regressor = (
            nn.Linear(self.n_batches - 1, n_output, bias=False)
            if self.n_batches > 1
            else None
        )
        self.factor_regressor = nn.Linear(n_input, n_output)
        self.px_dropout_decoder = nn.Linear(n_input, n_output)

    def forward(
        self,
        dispersion: str,
        z: torch.Tensor,
        library: torch.Tensor,
        *cat_list: Optional[torch.Tensor],
    ) -> Tuple[torch.Tensor, None, torch.Tensor, torch.Tensor]:
        """Return ``(px_scale, None, px_rate, px_dropout)``; see :class:`DecoderSCVI`."""
        raw_px_scale = self.factor_regressor(z)
        if self.batch_regressor is not None:
            batch = one_hot(cat_list[0], self.n_batches)[:, :-1]
            raw_px_scale = raw_px_scale + self.batch_regressor(batch)
        px_scale = torch.softmax(raw_px_scale, dim=-1)
        px_dropout = self.px_dropout_decoder(z)
        px_rate = torch.exp(library) * px_scale
        return px_scale, None, px_rate, px_dropout


class Decoder(nn.Module):
    """Decode latent vectors into the mean and variance of a diagonal Gaussian.

    Parameters
    ----------
    n_input
        Latent dimension.
    n_output
        Output dimension.
    n_cat_list
        Number of categories of each categorical covariate.
    n_layers
        Number of hidden layers.
    n_hidden
        Width of the hidden layers.
    """

    def __init__(
        self,
        n_input: int,
        n_output: int,
        n_cat_list: Optional[Iterable[int]] = None,
        n_layers: int = 1,
        n_hidden: int = 128,
    ):
        super().__init__()
        self.decoder = FCLayers(
            n_in=n_input,
            n_out=n_hidden,
            n_cat_list=n_cat_list,
            n_layers=n_layers,
            n_hidden=n_hidden,
            dropout_rate=0,
        )
        self.mean_decoder = nn.Linear(n_hidden, n_output)
        self.var_decoder = nn.Linear(n_hidden, n_output)

    def forward(
        self, x: torch.Tensor, *cat_list: Optional[torch.Tensor]
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Return the mean and the variance (``exp`` of a linear map)."""
        p = self.decoder(x, *cat_list)
        return self.mean_decoder(p), torch.exp(self.var_decoder(p))
