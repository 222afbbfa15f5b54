"""Encoder and decoder networks of totalVI (joint RNA and surface-protein model).

Sub-module names and creation order follow scVI 0.5, so ``state_dict`` keys match the
original and the same seed gives the same initial weights.
"""

from typing import Dict, Iterable, Optional, Tuple

import torch
from torch import nn
from torch.distributions import Normal

from scvi.models._base_modules import FCLayers, reparameterize_gaussian
from scvi.models.utils import check_option

_LATENT_DISTRIBUTIONS = ("normal", "ln")

# Upper bound of the sampled log library size (exp(15) ~ 3.3e6 counts).
_MAX_LOG_LIBRARY = 15.0


def _hidden_block(n_hidden: int, dropout_rate: float) -> nn.Sequential:
    """Linear -> BatchNorm1d (torch defaults) -> ReLU -> Dropout, width preserving."""
    return nn.Sequential(
        nn.Linear(n_hidden, n_hidden),
        nn.BatchNorm1d(n_hidden),
        nn.ReLU(),
        nn.Dropout(p=dropout_rate),
    )


class EncoderTOTALVI(nn.Module):
    """Encode concatenated gene and protein counts into ``z`` and the gene library size.

    A shared fully-connected trunk feeds two heads: one for the latent ``z`` (Gaussian,
    optionally pushed through a softmax to give a logistic-normal ``z``) and one for the
    log library size of the genes (Gaussian, so the library size is log-normal).

    Parameters
    ----------
    n_input
        Input dimension (number of genes plus number of proteins).
    n_output
        Latent dimension.
    n_cat_list
        Number of categories of each categorical covariate of the trunk.
    n_layers
        Number of layers of the trunk.
    n_hidden
        Width of the hidden layers.
    dropout_rate
        Dropout probability of every hidden layer.
    distribution
        ``"normal"`` (``z`` is Gaussian) or ``"ln"`` (logistic normal: softmax of a Gaussian).
    """

    def __init__(
        self,
        n_input: int,
        n_output: int,
        n_cat_list: Optional[Iterable[int]] = None,
        n_layers: int = 2,
        n_hidden: int = 256,
        dropout_rate: float = 0.1,
        distribution: str = "ln",
    ):
        super().__init__()
        self.distribution = check_option(
            "distribution", distribution, _LATENT_DISTRIBUTIONS
        )
        self.encoder = FCLayers(
            n_in=n_input,
            n_out=n_hidden,
            n_cat_list=n_cat_list,
            n_layers=n_layers,
            n_hidden=n_hidden,
            dropout_rate=dropout_rate,
        )
        self.z_encoder = _hidden_block(n_hidden, dropout_rate)
        self.z_mean_encoder = nn.Linear(n_hidden, n_output)
        self.z_var_encoder = nn.Linear(n_hidden, n_output)
        self.l_gene_encoder = _hidden_block(n_hidden, dropout_rate)
        self.l_gene_mean_encoder = nn.Linear(n_hidden, 1)
        self.l_gene_var_encoder = nn.Linear(n_hidden, 1)
        self.z_transformation = (
            nn.Softmax(dim=-1) if distribution == "ln" else nn.Identity()
        )

    @staticmethod
    def l_transformation(log_library: torch.Tensor) -> torch.Tensor:
        """Map a log library size to the library size (``exp``)."""
        return torch.exp(log_library)

    def reparameterize_transformation(
        self, mu: torch.Tensor, var: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Draw a reparameterised Gaussian sample and transform it.

        Returns
        -------
        ``(z, untran_z)``: the transformed sample and the Gaussian sample it came from.
        """
        untran_z = Normal(mu, var.sqrt()).rsample()
        return self.z_transformation(untran_z), untran_z

    def forward(self, data: torch.Tensor, *cat_list: Optional[torch.Tensor]) -> Tuple[
        torch.Tensor,
        torch.Tensor,
        torch.Tensor,
        torch.Tensor,
        Dict[str, torch.Tensor],
        Dict[str, torch.Tensor],
    ]:
        """Encode ``data`` of shape ``(batch, n_input)``.

        Returns
        -------
        ``(qz_m, qz_v, ql_m, ql_v, latent, untran_latent)``: moments of ``q(z)`` and of
        ``q(log library)`` (variances are ``exp(.) + 1e-4``), ``latent`` with the samples
        ``"z"`` (transformed) and ``"l"`` (library size), and ``untran_latent`` with the
        Gaussian samples they came from (``"l"`` is the log library size, capped at 15).
        """
        q = self.encoder(data, *cat_list)
        qz = self.z_encoder(q)
        qz_m = self.z_mean_encoder(qz)
        qz_v = torch.exp(self.z_var_encoder(qz)) + 1e-4
        z, untran_z = self.reparameterize_transformation(qz_m, qz_v)

        ql = self.l_gene_encoder(q)
        ql_m = self.l_gene_mean_encoder(ql)
        ql_v = torch.exp(self.l_gene_var_encoder(ql)) + 1e-4
        log_library = torch.clamp(
            reparameterize_gaussian(ql_m, ql_v), max=_MAX_LOG_LIBRARY
        )
        library = self.l_transformation(log_library)

        latent = {"z": z, "l": library}
        untran_latent = {"z": untran_z, "l": log_library}
        return qz_m, qz_v, ql_m, ql_v, latent, untran_latent


class DecoderTOTALVI(nn.Module):
    """Decode ``z`` into the parameters of the gene and protein count distributions.

    Four fully-connected stacks read ``z`` (and the covariates); ``z`` is concatenated to
    each stack's output before the final linear heads:

    * genes: expression frequencies (softmax) and zero-inflation logits;
    * protein background: a Gaussian over the log background mean, sampled with the
      reparameterisation trick;
    * protein foreground: a multiplicative increment ``1 + ReLU(.)`` over the background;
    * mixing: logits of the probability that a protein count is background.

    Parameters
    ----------
    n_input
        Latent dimension.
    n_output_genes
        Number of genes.
    n_output_proteins
        Number of proteins.
    n_cat_list
        Number of categories of each categorical covariate.
    n_layers
        Number of layers of each stack.
    n_hidden
        Width of the hidden layers.
    dropout_rate
        Dropout probability of the hidden layers.
    """

    def __init__(
        self,
        n_input: int,
        n_output_genes: int,
        n_output_proteins: int,
        n_cat_list: Optional[Iterable[int]] = None,
        n_layers: int = 1,
        n_hidden: int = 256,
        dropout_rate: float = 0,
    ):
        super().__init__()
        self.n_output_genes = n_output_genes
        self.n_output_proteins = n_output_proteins
        n_cat_list = list(n_cat_list) if n_cat_list is not None else None
        n_head = n_hidden + n_input

        def stack() -> FCLayers:
            return FCLayers(
                n_in=n_input,
                n_out=n_hidden,
                n_cat_list=n_cat_list,
                n_layers=n_layers,
                n_hidden=n_hidden,
                dropout_rate=dropout_rate,
            )

        self.px_decoder = stack()
        self.px_scale_decoder = nn.Sequential(
            nn.Linear(n_head, n_output_genes), nn.Softmax(dim=-1)
        )
        self.py_back_decoder = stack()
        self.py_back_mean_log_alpha = nn.Linear(n_head, n_output_proteins)
        self.py_back_mean_log_beta = nn.Linear(n_head, n_output_proteins)
        self.py_fore_decoder = stack()
        self.py_fore_scale_decoder = nn.Sequential(
            nn.Linear(n_head, n_output_proteins), nn.ReLU()
        )
        self.sigmoid_decoder = stack()
        self.px_dropout_decoder_gene = nn.Linear(n_head, n_output_genes)
        self.py_background_decoder = nn.Linear(n_head, n_output_proteins)

    def forward(
        self,
        z: torch.Tensor,
        library_gene: torch.Tensor,
        *cat_list: Optional[torch.Tensor],
    ) -> Tuple[Dict[str, torch.Tensor], Dict[str, torch.Tensor], torch.Tensor]:
        """Decode ``z`` of shape ``(batch, n_input)`` or ``(samples, batch, n_input)``.

        Parameters
        ----------
        z
            Latent values.
        library_gene
            Gene library size (counts, not log), broadcastable to ``(..., 1)``.
        *cat_list
            Categorical covariates, one tensor each.

        Returns
        -------
        ``(px_, py_, log_pro_back_mean)``: ``px_`` holds the gene ``scale`` (frequencies),
        ``rate`` (``library_gene * scale``) and ``dropout`` (logits); ``py_`` holds
        ``back_alpha``/``back_beta`` (mean and standard deviation of the log background
        mean), ``rate_back``, ``fore_scale`` (>= 1), ``rate_fore`` and ``mixing`` (logits of
        background); ``log_pro_back_mean`` is the sampled log background mean.
        """
        px = torch.cat([self.px_decoder(z, *cat_list), z], dim=-1)
        px_scale = self.px_scale_decoder(px)
        px_ = {"scale": px_scale, "rate": library_gene * px_scale}

        py_back = torch.cat([self.py_back_decoder(z, *cat_list), z], dim=-1)
        back_alpha = self.py_back_mean_log_alpha(py_back)
        back_beta = torch.exp(self.py_back_mean_log_beta(py_back))
        log_pro_back_mean = Normal(back_alpha, back_beta).rsample()
        rate_back = torch.exp(log_pro_back_mean)

        py_fore = torch.cat([self.py_fore_decoder(z, *cat_list), z], dim=-1)
        fore_scale = self.py_fore_scale_decoder(py_fore) + 1

        mixing = torch.cat([self.sigmoid_decoder(z, *cat_list), z], dim=-1)
        px_["dropout"] = self.px_dropout_decoder_gene(mixing)
        py_ = {
            "back_alpha": back_alpha,
            "back_beta": back_beta,
            "rate_back": rate_back,
            "fore_scale": fore_scale,
            "rate_fore": rate_back * fore_scale,
            "mixing": self.py_background_decoder(mixing),
        }
        return px_, py_, log_pro_back_mean
