"""totalVI: joint model of RNA and surface-protein counts of the same cells (CITE-seq)."""

import numbers
from typing import Dict, Optional, Tuple, Union

import torch
from torch import nn
from torch.distributions import Normal
from torch.distributions import kl_divergence as kl

from scvi.models._modules_totalvi import DecoderTOTALVI, EncoderTOTALVI
from scvi.models.log_likelihood import (
    log_mixture_nb,
    log_nb_positive,
    log_zinb_positive,
)
from scvi.models.utils import check_option

_GENE_DISPERSIONS = ("gene", "gene-batch", "gene-label")
_PROTEIN_DISPERSIONS = ("protein", "protein-batch", "protein-label")
_GENE_LOSSES = ("nb", "zinb")

Outputs = Dict[str, Union[torch.Tensor, Dict[str, torch.Tensor]]]


def _per_category(param: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Rows ``param[:, index]`` of a ``(n_features, n_categories)`` table, one per cell."""
    return param[:, index.view(-1).long()].t()


class TOTALVI(nn.Module):
    """totalVI: variational auto-encoder of paired gene and protein counts.

    A shared latent ``z`` (Gaussian or logistic normal) and a log-normal gene library size
    are inferred from the log-transformed gene and protein counts. Genes follow a negative
    binomial (``nb``) or zero-inflated NB (``zinb``) with mean ``library * frequency``.
    Each protein count follows a two-component NB mixture: a background component whose
    log mean has a Gaussian prior per protein (and per batch), and a foreground component
    whose mean is the background mean times a factor of at least one.

    Parameters
    ----------
    n_input_genes
        Number of genes.
    n_input_proteins
        Number of proteins.
    n_batch
        Number of batches; with ``n_batch > 0`` the decoder and the background prior are
        batch-specific.
    n_labels
        Number of labels; the decoder is conditioned on them when ``n_labels > 1``.
    n_hidden
        Width of the hidden layers.
    n_latent
        Dimension of the latent space.
    n_layers
        Number of layers of the encoder trunk and of each decoder stack.
    dropout_rate_decoder
        Dropout probability of the decoder.
    dropout_rate_encoder
        Dropout probability of the encoder.
    gene_dispersion
        Gene inverse dispersion: ``"gene"`` (per gene), ``"gene-batch"`` (per gene and
        batch) or ``"gene-label"`` (per gene and label).
    protein_dispersion
        Protein inverse dispersion: ``"protein"``, ``"protein-batch"`` or ``"protein-label"``.
    log_variational
        Encode ``log(1 + counts)`` (numerical stability, not normalisation).
    reconstruction_loss_gene
        ``"nb"`` or ``"zinb"``.
    latent_distribution
        ``"ln"`` (logistic normal) or ``"normal"``.

    Examples
    --------
    >>> dataset = CbmcDataset()
    >>> model = TOTALVI(dataset.nb_genes, len(dataset.protein_names))
    >>> trainer = TotalTrainer(model, dataset)
    >>> trainer.train(n_epochs=400)
    """

    def __init__(
        self,
        n_input_genes: int,
        n_input_proteins: int,
        n_batch: int = 0,
        n_labels: int = 0,
        n_hidden: int = 256,
        n_latent: int = 20,
        n_layers: int = 1,
        dropout_rate_decoder: float = 0.2,
        dropout_rate_encoder: float = 0.2,
        gene_dispersion: str = "gene",
        protein_dispersion: str = "protein",
        log_variational: bool = True,
        reconstruction_loss_gene: str = "nb",
        latent_distribution: str = "ln",
    ):
        super().__init__()
        for name, value in (
            ("n_input_genes", n_input_genes),
            ("n_input_proteins", n_input_proteins),
        ):
            if not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        self.gene_dispersion = check_option(
            "gene_dispersion", gene_dispersion, _GENE_DISPERSIONS
        )
        self.protein_dispersion = check_option(
            "protein_dispersion", protein_dispersion, _PROTEIN_DISPERSIONS
        )
        self.reconstruction_loss_gene = check_option(
            "reconstruction_loss_gene", reconstruction_loss_gene, _GENE_LOSSES
        )
        check_option("latent_distribution", latent_distribution, ("normal", "ln"))
        self.n_latent = n_latent
        self.log_variational = log_variational
        self.n_batch = n_batch
        self.n_labels = n_labels
        self.n_input_genes = n_input_genes
        self.n_input_proteins = n_input_proteins
        self.latent_distribution = latent_distribution

        # Gaussian prior of the log protein background mean, per protein (and batch).
        prior_shape = (
            (n_input_proteins, n_batch) if n_batch > 0 else (n_input_proteins,)
        )
        self.background_pro_alpha = nn.Parameter(torch.randn(*prior_shape))
        self.background_pro_log_beta = nn.Parameter(torch.randn(*prior_shape))

        if gene_dispersion == "gene":
            self.px_r = nn.Parameter(torch.randn(n_input_genes))
        else:
            n_cat = self._n_categories("gene_dispersion", gene_dispersion)
            self.px_r = nn.Parameter(torch.randn(n_input_genes, n_cat))
        if protein_dispersion == "protein":
            self.py_r = nn.Parameter(torch.ones(n_input_proteins))
        else:
            n_cat = self._n_categories("protein_dispersion", protein_dispersion)
            self.py_r = nn.Parameter(torch.ones(n_input_proteins, n_cat))

        self.encoder = EncoderTOTALVI(
            n_input_genes + n_input_proteins,
            n_latent,
            n_layers=n_layers,
            n_hidden=n_hidden,
            dropout_rate=dropout_rate_encoder,
            distribution=latent_distribution,
        )
        self.decoder = DecoderTOTALVI(
            n_latent,
            n_input_genes,
            n_input_proteins,
            n_layers=n_layers,
            n_cat_list=[n_batch, n_labels],
            n_hidden=n_hidden,
            dropout_rate=dropout_rate_decoder,
        )

    def _n_categories(self, name: str, value: str) -> int:
        n_cat = self.n_batch if value.endswith("-batch") else self.n_labels
        if n_cat < 1:
            needed = "n_batch" if value.endswith("-batch") else "n_labels"
            raise ValueError(f"{name}={value!r} needs {needed} >= 1, got {n_cat}.")
        return n_cat

    def _encoder_input(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Concatenated genes and proteins, log-transformed when ``log_variational``."""
        data = torch.cat((x, y), dim=-1)
        return torch.log1p(data) if self.log_variational else data

    def _check_covariates(
        self, batch_index: Optional[torch.Tensor], label: Optional[torch.Tensor]
    ) -> None:
        if self.n_batch > 0 and batch_index is None:
            raise ValueError(
                f"This model has n_batch={self.n_batch}: pass batch_index, the batch of "
                "each cell as a (n_cells, 1) integer tensor."
            )
        self._check_label(label)

    def _check_label(self, label: Optional[torch.Tensor]) -> None:
        needs_label = self.n_labels > 1 or self.gene_dispersion == "gene-label"
        needs_label = needs_label or self.protein_dispersion == "protein-label"
        if needs_label and label is None:
            raise ValueError(
                f"This model uses labels (n_labels={self.n_labels}): pass label, the label "
                "of each cell as a (n_cells, 1) integer tensor."
            )

    def sample_from_posterior_z(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_index: Optional[torch.Tensor] = None,
        give_mean: bool = False,
        n_samples: int = 5000,
    ) -> torch.Tensor:
        """Sample ``z`` from its posterior, or return its posterior mean.

        Parameters
        ----------
        x
            Gene counts, ``(batch, n_input_genes)``.
        y
            Protein counts, ``(batch, n_input_proteins)``.
        batch_index
            Unused (the encoder is not batch-conditioned); kept for API compatibility.
        give_mean
            Return the mean of ``z``: the Gaussian mean for ``"normal"``, a Monte-Carlo
            estimate over ``n_samples`` draws for the logistic normal.
        n_samples
            Number of draws of the Monte-Carlo mean.

        Returns
        -------
        Tensor of shape ``(batch, n_latent)``.
        """
        qz_m, qz_v, _, _, latent, _ = self.encoder(self._encoder_input(x, y))
        if not give_mean:
            return latent["z"]
        if self.latent_distribution == "ln":
            draws = Normal(qz_m, qz_v.sqrt()).sample([n_samples])
            return self.encoder.z_transformation(draws).mean(dim=0)
        return qz_m

    def sample_from_posterior_l(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_index: Optional[torch.Tensor] = None,
        give_mean: bool = True,
    ) -> torch.Tensor:
        """Gene library size: its log-normal posterior mean, or a sample.

        Parameters
        ----------
        x
            Gene counts, ``(batch, n_input_genes)``.
        y
            Protein counts, ``(batch, n_input_proteins)``.
        batch_index
            Unused; kept for API compatibility.
        give_mean
            Return ``exp(ql_m + ql_v / 2)`` instead of a sample.

        Returns
        -------
        Tensor of shape ``(batch, 1)``.
        """
        _, _, ql_m, ql_v, latent, _ = self.encoder(self._encoder_input(x, y))
        if give_mean:
            return torch.exp(ql_m + 0.5 * ql_v)
        return latent["l"]

    def get_sample_rate(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_index: Optional[torch.Tensor] = None,
        label: Optional[torch.Tensor] = None,
        n_samples: int = 1,
    ) -> torch.Tensor:
        """Gene NB means at posterior samples, ``([n_samples,] batch, n_input_genes)``."""
        outputs = self.inference(
            x, y, batch_index=batch_index, label=label, n_samples=n_samples
        )
        return outputs["px_"]["rate"]

    def get_sample_dispersion(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_index: Optional[torch.Tensor] = None,
        label: Optional[torch.Tensor] = None,
        n_samples: int = 1,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Inverse dispersions ``(px_r, py_r)`` of genes and proteins (broadcastable to the counts)."""
        outputs = self.inference(
            x, y, batch_index=batch_index, label=label, n_samples=n_samples
        )
        return outputs["px_"]["r"], outputs["py_"]["r"]

    def scale_from_z(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        fixed_batch: Union[float, torch.Tensor],
        label: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Gene and protein scales decoded at a posterior sample of ``z``, as if every cell came from ``fixed_batch``.

        Parameters
        ----------
        x
            Gene counts, ``(batch, n_input_genes)``.
        y
            Protein counts, ``(batch, n_input_proteins)``.
        fixed_batch
            Batch to decode every cell in.
        label
            Labels of the cells, ``(batch, 1)``; required when the decoder uses labels
            (``n_labels > 1``).

        Returns
        -------
        ``(px_scale, py_scale)``: gene frequencies and normalised protein foreground.
        """
        self._check_label(label)
        if self.n_batch > 1 and not 0 <= float(fixed_batch) < self.n_batch:
            raise ValueError(
                f"fixed_batch must be a batch of the model, in [0, {self.n_batch}), "
                f"got {fixed_batch}."
            )
        latent = self.encoder(self._encoder_input(x, y))[4]
        ones = torch.ones_like(x[:, :1])
        batch_index = float(fixed_batch) * ones
        # The library size does not enter the scales; any value will do.
        px_, py_, _ = self.decoder(latent["z"], 4.0 * ones, batch_index, label)
        return px_["scale"], self._protein_scale(py_)

    @staticmethod
    def _protein_scale(py_: Dict[str, torch.Tensor]) -> torch.Tensor:
        """Foreground mean weighted by the foreground probability, normalised to sum to one."""
        foreground = torch.sigmoid(-py_["mixing"]) * py_["rate_fore"]
        return foreground / foreground.sum(dim=-1, keepdim=True).clamp(min=1e-12)

    def get_reconstruction_loss(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        px_: Dict[str, torch.Tensor],
        py_: Dict[str, torch.Tensor],
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Negative log-likelihoods of the gene and of the protein counts, summed per cell."""
        if self.reconstruction_loss_gene == "zinb":
            log_px = log_zinb_positive(x, px_["rate"], px_["r"], px_["dropout"])
        else:
            log_px = log_nb_positive(x, px_["rate"], px_["r"])
        log_py = log_mixture_nb(
            y, py_["rate_back"], py_["rate_fore"], py_["r"], None, py_["mixing"]
        )
        return -log_px.sum(dim=-1), -log_py.sum(dim=-1)

    def _dispersion(
        self,
        param: torch.Tensor,
        mode: str,
        batch_index: Optional[torch.Tensor],
        label: Optional[torch.Tensor],
    ) -> torch.Tensor:
        if mode.endswith("-batch"):
            param = _per_category(param, batch_index)
        elif mode.endswith("-label"):
            param = _per_category(param, label)
        return torch.exp(param)

    def _background_prior(self, batch_index: Optional[torch.Tensor]) -> Normal:
        alpha, log_beta = self.background_pro_alpha, self.background_pro_log_beta
        if self.n_batch > 0:
            alpha = _per_category(alpha, batch_index)
            log_beta = _per_category(log_beta, batch_index)
        return Normal(alpha, torch.exp(log_beta))

    def inference(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_index: Optional[torch.Tensor] = None,
        label: Optional[torch.Tensor] = None,
        n_samples: int = 1,
    ) -> Outputs:
        """Encode the counts, sample the latents and decode them.

        With ``n_samples > 1`` the latents are drawn ``n_samples`` times (without
        reparameterisation) and every sampled tensor gains a leading sample dimension.
        Sets :attr:`back_mean_prior`, the prior of the log protein background mean for
        these cells.

        Parameters
        ----------
        x
            Gene counts, ``(batch, n_input_genes)``.
        y
            Protein counts, ``(batch, n_input_proteins)``.
        batch_index
            Batch of each cell, ``(batch, 1)``; required when ``n_batch > 0``.
        label
            Label of each cell, ``(batch, 1)``; required when the model uses labels.
        n_samples
            Number of posterior samples.

        Returns
        -------
        dict with ``px_`` (gene ``scale``, ``rate``, ``dropout``, ``r``), ``py_`` (protein
        ``back_alpha``, ``back_beta``, ``rate_back``, ``fore_scale``, ``rate_fore``,
        ``mixing``, ``r``, ``scale``), ``qz_m``, ``qz_v``, ``z``, ``untran_z``, ``ql_m``,
        ``ql_v``, ``library_gene``, ``untran_l`` (log library) and ``log_pro_back_mean``.
        """
        self._check_covariates(batch_index, label)
        qz_m, qz_v, ql_m, ql_v, latent, untran_latent = self.encoder(
            self._encoder_input(x, y)
        )
        z, library_gene = latent["z"], latent["l"]
        untran_z, untran_l = untran_latent["z"], untran_latent["l"]
        if n_samples > 1:
            qz_m = qz_m.unsqueeze(0).expand(n_samples, -1, -1)
            qz_v = qz_v.unsqueeze(0).expand(n_samples, -1, -1)
            untran_z = Normal(qz_m, qz_v.sqrt()).sample()
            z = self.encoder.z_transformation(untran_z)
            ql_m = ql_m.unsqueeze(0).expand(n_samples, -1, -1)
            ql_v = ql_v.unsqueeze(0).expand(n_samples, -1, -1)
            untran_l = Normal(ql_m, ql_v.sqrt()).sample()
            library_gene = self.encoder.l_transformation(untran_l)

        px_r = self._dispersion(self.px_r, self.gene_dispersion, batch_index, label)
        py_r = self._dispersion(self.py_r, self.protein_dispersion, batch_index, label)
        self.back_mean_prior = self._background_prior(batch_index)

        px_, py_, log_pro_back_mean = self.decoder(z, library_gene, batch_index, label)
        px_["r"] = px_r
        py_["r"] = py_r
        py_["scale"] = self._protein_scale(py_)
        return dict(
            px_=px_,
            py_=py_,
            qz_m=qz_m,
            qz_v=qz_v,
            z=z,
            untran_z=untran_z,
            ql_m=ql_m,
            ql_v=ql_v,
            library_gene=library_gene,
            untran_l=untran_l,
            log_pro_back_mean=log_pro_back_mean,
        )

    def forward(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        local_l_mean_gene: torch.Tensor,
        local_l_var_gene: torch.Tensor,
        batch_index: Optional[torch.Tensor] = None,
        label: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Loss terms of a minibatch, one value per cell.

        Parameters
        ----------
        x
            Gene counts, ``(batch, n_input_genes)``.
        y
            Protein counts, ``(batch, n_input_proteins)``.
        local_l_mean_gene, local_l_var_gene
            Mean and variance of the prior of the log gene library size, ``(batch, 1)``.
        batch_index
            Batch of each cell, ``(batch, 1)``.
        label
            Label of each cell, ``(batch, 1)``.

        Returns
        -------
        ``(reconst_loss_gene, reconst_loss_protein, kl_div_z, kl_div_l_gene,
        kl_div_back_pro)``.
        """
        outputs = self.inference(x, y, batch_index, label)
        qz_m, qz_v = outputs["qz_m"], outputs["qz_v"]
        ql_m, ql_v = outputs["ql_m"], outputs["ql_v"]
        px_, py_ = outputs["px_"], outputs["py_"]
        reconst_loss_gene, reconst_loss_protein = self.get_reconstruction_loss(
            x, y, px_, py_
        )
        kl_div_z = kl(
            Normal(qz_m, qz_v.sqrt()),
            Normal(torch.zeros_like(qz_m), torch.ones_like(qz_v)),
        ).sum(dim=1)
        kl_div_l_gene = kl(
            Normal(ql_m, ql_v.sqrt()),
            Normal(local_l_mean_gene, local_l_var_gene.sqrt()),
        ).sum(dim=1)
        kl_div_back_pro = kl(
            Normal(py_["back_alpha"], py_["back_beta"]), self.back_mean_prior
        ).sum(dim=-1)
        return (
            reconst_loss_gene,
            reconst_loss_protein,
            kl_div_z,
            kl_div_l_gene,
            kl_div_back_pro,
        )
