"""gimVI: a joint variational auto-encoder of several datasets measuring different genes."""

from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Normal, Poisson
from torch.distributions import kl_divergence as kl

from scvi.models._base_modules import Encoder
from scvi.models._modules_jvae import MultiDecoder, MultiEncoder
from scvi.models.log_likelihood import log_nb_positive, log_zinb_positive
from scvi.models.utils import check_option, one_hot

torch.backends.cudnn.benchmark = True

_RECONSTRUCTION_LOSSES = ("zinb", "nb", "poisson")
_DISPERSIONS = ("gene", "gene-batch", "gene-label", "gene-cell")

Encoded = Tuple[
    torch.Tensor,
    torch.Tensor,
    torch.Tensor,
    Optional[torch.Tensor],
    Optional[torch.Tensor],
    torch.Tensor,
]


def _mapping_positions(
    mapping: Union[np.ndarray, slice, Sequence[int]], total_genes: int, mode: int
) -> np.ndarray:
    """The output positions (in ``0..total_genes-1``) that a mapping selects, in order."""
    if isinstance(mapping, slice):
        return np.arange(total_genes)[mapping]
    positions = np.asarray(mapping)
    if positions.ndim != 1 or (
        positions.size and not np.issubdtype(positions.dtype, np.integer)
    ):
        raise ValueError(
            f"indices_mappings[{mode}] must be a slice or a 1-D array of integer gene "
            f"positions, got an array of dtype {positions.dtype} and shape "
            f"{positions.shape}."
        )
    if positions.size and (positions.min() < 0 or positions.max() >= total_genes):
        raise ValueError(
            f"indices_mappings[{mode}] has positions outside 0..{total_genes - 1} "
            f"(total_genes={total_genes}): min {positions.min()}, max {positions.max()}."
        )
    return positions.astype(np.int64)


class JVAE(nn.Module):
    """Joint variational auto-encoder of several datasets (gimVI, Lopez et al. 2019).

    Each dataset ("mode") measures its own subset of a common set of ``total_genes``
    genes, e.g. a scRNA-seq dataset with all genes and a spatial (smFISH) dataset with a
    few. Every dataset has its own encoder head; the latent space and the decoder over all
    genes are shared, so genes missing from one dataset can be imputed from the others.

    Parameters
    ----------
    dim_input_list
        Number of genes of each dataset.
    total_genes
        Number of genes of the shared output space (the union of all datasets' genes).
    indices_mappings
        For each dataset, the output positions of its genes: an integer array of length
        ``dim_input_list[i]`` (gene ``j`` of dataset ``i`` is output gene
        ``indices_mappings[i][j]``) or a slice of ``range(total_genes)`` of that length.
    reconstruction_losses
        Count distribution of each dataset: ``"zinb"``, ``"nb"`` or ``"poisson"``.
    model_library_bools
        For each dataset, whether the library size is a latent variable (True) or the
        observed log total count (False).
    n_latent
        Dimension of the latent space.
    n_layers_encoder_individual
        Number of layers of each dataset's own encoder stack.
    n_layers_encoder_shared
        Number of shared encoder layers.
    dim_hidden_encoder
        Width of the encoder's hidden layers.
    n_layers_decoder_individual
        Number of batch-conditioned decoder layers.
    n_layers_decoder_shared
        Number of unconditioned decoder layers.
    dim_hidden_decoder_individual
        Width of the conditioned decoder layers.
    dim_hidden_decoder_shared
        Width of the unconditioned decoder layers.
    dropout_rate_encoder
        Dropout probability of the encoders.
    dropout_rate_decoder
        Dropout probability of the decoder.
    n_batch
        Total number of batches over all datasets.
    n_labels
        Total number of labels.
    dispersion
        ``"gene"``, ``"gene-batch"``, ``"gene-label"`` or ``"gene-cell"``, as in
        :class:`~scvi.models.VAE`.
    log_variational
        Encode ``log(1 + x)`` instead of ``x``.

    Examples
    --------
    >>> model = JVAE(
    ...     [seq.nb_genes, fish.nb_genes], seq.nb_genes, [slice(None), fish_positions],
    ...     ["zinb", "nb"], [True, False], n_batch=2,
    ... )
    """

    def __init__(
        self,
        dim_input_list: List[int],
        total_genes: int,
        indices_mappings: List[Union[np.ndarray, slice]],
        reconstruction_losses: List[str],
        model_library_bools: List[bool],
        n_latent: int = 10,
        n_layers_encoder_individual: int = 1,
        n_layers_encoder_shared: int = 1,
        dim_hidden_encoder: int = 128,
        n_layers_decoder_individual: int = 0,
        n_layers_decoder_shared: int = 0,
        dim_hidden_decoder_individual: int = 32,
        dim_hidden_decoder_shared: int = 128,
        dropout_rate_encoder: float = 0.1,
        dropout_rate_decoder: float = 0.3,
        n_batch: int = 0,
        n_labels: int = 0,
        dispersion: str = "gene-batch",
        log_variational: bool = True,
    ):
        super().__init__()
        self._check_modes(
            dim_input_list,
            total_genes,
            indices_mappings,
            reconstruction_losses,
            model_library_bools,
        )
        check_option("dispersion", dispersion, _DISPERSIONS)
        if dispersion == "gene-batch" and n_batch < 1:
            raise ValueError(
                "dispersion='gene-batch' needs n_batch >= 1 (the total number of batches "
                "over all datasets); pass n_batch or choose dispersion='gene'."
            )
        if dispersion == "gene-label" and n_labels < 1:
            raise ValueError(
                "dispersion='gene-label' needs n_labels >= 1; pass n_labels or choose "
                "dispersion='gene'."
            )
        self.n_input_list = dim_input_list
        self.total_genes = total_genes
        self.indices_mappings = indices_mappings
        self.reconstruction_losses = reconstruction_losses
        self.model_library_bools = model_library_bools
        self.n_latent = n_latent
        self.n_batch = n_batch
        self.n_labels = n_labels
        self.dispersion = dispersion
        self.log_variational = log_variational

        self.z_encoder = MultiEncoder(
            n_heads=len(dim_input_list),
            n_input_list=dim_input_list,
            n_output=n_latent,
            n_hidden=dim_hidden_encoder,
            n_layers_individual=n_layers_encoder_individual,
            n_layers_shared=n_layers_encoder_shared,
            dropout_rate=dropout_rate_encoder,
        )
        self.l_encoders = nn.ModuleList(
            (
                Encoder(n_input, 1, n_layers=1, dropout_rate=dropout_rate_encoder)
                if model_library
                else None
            )
            for n_input, model_library in zip(dim_input_list, model_library_bools)
        )
        self.decoder = MultiDecoder(
            n_latent,
            total_genes,
            n_hidden_conditioned=dim_hidden_decoder_individual,
            n_hidden_shared=dim_hidden_decoder_shared,
            n_layers_conditioned=n_layers_decoder_individual,
            n_layers_shared=n_layers_decoder_shared,
            n_cat_list=[n_batch],
            dropout_rate=dropout_rate_decoder,
        )
        if dispersion == "gene":
            self.px_r = nn.Parameter(torch.randn(total_genes))
        elif dispersion == "gene-batch":
            self.px_r = nn.Parameter(torch.randn(total_genes, n_batch))
        elif dispersion == "gene-label":
            self.px_r = nn.Parameter(torch.randn(total_genes, n_labels))

    @staticmethod
    def _check_modes(
        dim_input_list: Sequence[int],
        total_genes: int,
        indices_mappings: Sequence[Union[np.ndarray, slice]],
        reconstruction_losses: Sequence[str],
        model_library_bools: Sequence[bool],
    ) -> None:
        """Validate the per-dataset arguments against each other."""
        n_modes = len(dim_input_list)
        if n_modes == 0:
            raise ValueError(
                "JVAE needs at least one dataset: dim_input_list is empty."
            )
        lengths = {
            "indices_mappings": len(indices_mappings),
            "reconstruction_losses": len(reconstruction_losses),
            "model_library_bools": len(model_library_bools),
        }
        for name, length in lengths.items():
            if length != n_modes:
                raise ValueError(
                    f"{name} has {length} entries but dim_input_list has {n_modes}; give "
                    "one entry per dataset, in the same order."
                )
        if total_genes < 1:
            raise ValueError(f"total_genes must be at least 1, got {total_genes}.")
        for mode, (n_input, mapping, loss) in enumerate(
            zip(dim_input_list, indices_mappings, reconstruction_losses)
        ):
            check_option(f"reconstruction_losses[{mode}]", loss, _RECONSTRUCTION_LOSSES)
            if n_input < 1:
                raise ValueError(
                    f"Dataset {mode} has dim_input_list[{mode}]={n_input} genes; every "
                    "dataset needs at least one gene."
                )
            positions = _mapping_positions(mapping, total_genes, mode)
            if len(positions) != n_input:
                raise ValueError(
                    f"indices_mappings[{mode}] selects {len(positions)} output genes but "
                    f"dataset {mode} has dim_input_list[{mode}]={n_input} genes; the "
                    "mapping needs one output position per input gene."
                )
            if len(np.unique(positions)) != len(positions):
                raise ValueError(
                    f"indices_mappings[{mode}] maps several genes of dataset {mode} to the "
                    "same output position; positions must be distinct."
                )

    def _check_mode(self, mode: Optional[int], what: str = "mode") -> int:
        """Resolve ``mode`` (None is allowed with a single dataset) and check its range."""
        n_modes = len(self.n_input_list)
        if mode is None:
            if n_modes == 1:
                return 0
            raise ValueError(
                f"This JVAE has {n_modes} datasets: pass {what}=i to say which dataset "
                "(encoder head) the cells come from."
            )
        if not 0 <= int(mode) < n_modes:
            raise ValueError(
                f"{what}={mode} is out of range: this JVAE has {n_modes} datasets, "
                f"numbered 0 to {n_modes - 1}."
            )
        return int(mode)

    def sample_from_posterior_z(
        self, x: torch.Tensor, mode: int = None, deterministic: bool = False
    ) -> torch.Tensor:
        """Latent sample ``z ~ q(z | x)`` through encoder head ``mode``.

        Parameters
        ----------
        x
            Counts of dataset ``mode``, ``(batch, dim_input_list[mode])``.
        mode
            Dataset (head) index; may be omitted with a single dataset.
        deterministic
            Return the posterior mean instead of a sample.
        """
        qz_m, _, z, _, _, _ = self.encode(x, self._check_mode(mode))
        return qz_m if deterministic else z

    def sample_from_posterior_l(
        self, x: torch.Tensor, mode: int = None, deterministic: bool = False
    ) -> torch.Tensor:
        """Log library size of each cell, ``(batch, 1)``.

        A sample of ``q(l | x)`` (its mean when ``deterministic``) for datasets whose
        library is modelled, the observed log total count otherwise.
        """
        _, _, _, ql_m, _, library = self.encode(x, self._check_mode(mode))
        if deterministic and ql_m is not None:
            return ql_m
        return library

    def _encode_decode(
        self,
        x: torch.Tensor,
        mode: int,
        batch_index: Optional[torch.Tensor],
        y: Optional[torch.Tensor],
        deterministic: bool,
        decode_mode: Optional[int],
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        mode = self._check_mode(mode)
        decode_mode = mode if decode_mode is None else self._check_mode(decode_mode)
        qz_m, _, z, ql_m, _, library = self.encode(x, mode)
        if deterministic:
            z = qz_m
            if ql_m is not None:
                library = ql_m
        return self.decode(z, decode_mode, library, batch_index, y)

    def sample_scale(
        self,
        x: torch.Tensor,
        mode: int,
        batch_index: torch.Tensor,
        y: Optional[torch.Tensor] = None,
        deterministic: bool = False,
        decode_mode: Optional[int] = None,
    ) -> torch.Tensor:
        """Expression frequencies of all ``total_genes`` genes, ``(batch, total_genes)``.

        Frequencies are normalised to sum to one over the genes of the decoding dataset.

        Parameters
        ----------
        x
            Counts of dataset ``mode``.
        mode
            Dataset whose encoder head reads ``x``.
        batch_index
            Batch of each cell, ``(batch, 1)``.
        y
            Label of each cell, ``(batch, 1)``.
        deterministic
            Use the posterior means of ``z`` (and ``l``) instead of samples.
        decode_mode
            Dataset whose gene subset normalises the frequencies (default: ``mode``).
        """
        return self._encode_decode(x, mode, batch_index, y, deterministic, decode_mode)[
            0
        ]

    def get_sample_rate(
        self, x: torch.Tensor, batch_index: torch.Tensor, *_: Any, **__: Any
    ) -> torch.Tensor:
        """``sample_rate(x, 0, batch_index)``: the VAE-style accessor, for dataset 0.

        Further arguments (labels, ``n_samples``...) are accepted and ignored, as in
        scVI 0.5; use :meth:`sample_rate` for other datasets or label-dependent
        dispersions.
        """
        return self.sample_rate(x, 0, batch_index)

    def sample_rate(
        self,
        x: torch.Tensor,
        mode: int,
        batch_index: torch.Tensor,
        y: Optional[torch.Tensor] = None,
        deterministic: bool = False,
        decode_mode: int = None,
    ) -> torch.Tensor:
        """Expected counts of all ``total_genes`` genes: frequencies times the library size.

        Parameters are those of :meth:`sample_scale`.
        """
        return self._encode_decode(x, mode, batch_index, y, deterministic, decode_mode)[
            2
        ]

    def reconstruction_loss(
        self,
        x: torch.Tensor,
        px_rate: torch.Tensor,
        px_r: torch.Tensor,
        px_dropout: torch.Tensor,
        mode: int,
    ) -> torch.Tensor:
        """Negative log-likelihood of ``x`` under dataset ``mode``'s distribution, per cell.

        All parameters must already be restricted to the genes of that dataset.
        """
        loss = self.reconstruction_losses[self._check_mode(mode)]
        if loss == "zinb":
            log_px = log_zinb_positive(x, px_rate, px_r, px_dropout)
        elif loss == "nb":
            log_px = log_nb_positive(x, px_rate, px_r)
        else:
            log_px = Poisson(px_rate).log_prob(x)
        return -log_px.sum(dim=-1)

    def encode(self, x: torch.Tensor, mode: int) -> Encoded:
        """Encode ``x`` of dataset ``mode``.

        Returns
        -------
        ``(qz_m, qz_v, z, ql_m, ql_v, library)``; ``ql_m`` and ``ql_v`` are None and
        ``library`` is the observed log total count when the dataset's library size is
        not modelled.
        """
        mode = self._check_mode(mode)
        if x.dim() != 2 or x.size(-1) != self.n_input_list[mode]:
            raise ValueError(
                f"Dataset {mode} has {self.n_input_list[mode]} genes, but x has shape "
                f"{tuple(x.shape)}; pass a (cells, {self.n_input_list[mode]}) matrix."
            )
        x_ = torch.log1p(x) if self.log_variational else x
        qz_m, qz_v, z = self.z_encoder(x_, mode)
        if self.model_library_bools[mode]:
            ql_m, ql_v, library = self.l_encoders[mode](x_)
        else:
            ql_m, ql_v = None, None
            library = torch.log(x.sum(dim=1)).view(-1, 1)
        return qz_m, qz_v, z, ql_m, ql_v, library

    def decode(
        self,
        z: torch.Tensor,
        mode: int,
        library: torch.Tensor,
        batch_index: Optional[torch.Tensor] = None,
        y: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Decode ``z`` into parameters over all ``total_genes`` genes.

        Returns
        -------
        ``(px_scale, px_r, px_rate, px_dropout)``: frequencies normalised over the genes of
        dataset ``mode``, inverse dispersions, means ``px_scale * exp(library)`` and
        zero-inflation logits.
        """
        mode = self._check_mode(mode)
        px_scale, px_r, _, px_dropout = self.decoder(
            z, mode, library, self.dispersion, batch_index, y
        )
        for needed, value, name in (
            ("gene-label", y, "y (labels)"),
            ("gene-batch", batch_index, "batch_index"),
        ):
            if self.dispersion == needed and value is None:
                raise ValueError(
                    f"dispersion={needed!r} needs {name} to pick each cell's inverse "
                    "dispersion, but None was given."
                )
        if self.dispersion == "gene-label":
            px_r = F.linear(one_hot(y, self.n_labels), self.px_r)
        elif self.dispersion == "gene-batch":
            px_r = F.linear(one_hot(batch_index, self.n_batch), self.px_r)
        elif self.dispersion == "gene":
            px_r = self.px_r.view(1, -1)
        px_r = torch.exp(px_r)
        observed = px_scale[:, self.indices_mappings[mode]]
        px_scale = px_scale / observed.sum(dim=1, keepdim=True)
        px_rate = px_scale * torch.exp(library)
        return px_scale, px_r, px_rate, px_dropout

    def forward(
        self,
        x: torch.Tensor,
        local_l_mean: torch.Tensor,
        local_l_var: torch.Tensor,
        batch_index: Optional[torch.Tensor] = None,
        y: Optional[torch.Tensor] = None,
        mode: Optional[int] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor, float]:
        """Loss terms of a minibatch of dataset ``mode``.

        Parameters
        ----------
        x
            Counts, ``(batch, dim_input_list[mode])``.
        local_l_mean, local_l_var
            Mean and variance of the log-normal prior of the library size, ``(batch, 1)``.
        batch_index
            Batch of each cell, ``(batch, 1)``.
        y
            Label of each cell, ``(batch, 1)``.
        mode
            Dataset index; may be omitted with a single dataset.

        Returns
        -------
        ``(reconstruction loss, KL(z) + KL(l), 0.0)``, the first two per cell; the
        reconstruction only covers the genes the dataset measures.
        """
        mode = self._check_mode(mode)
        qz_m, qz_v, z, ql_m, ql_v, library = self.encode(x, mode)
        _, px_r, px_rate, px_dropout = self.decode(z, mode, library, batch_index, y)
        observed = self.indices_mappings[mode]
        reconstruction_loss = self.reconstruction_loss(
            x,
            px_rate[:, observed],
            px_r[:, observed],
            px_dropout[:, observed],
            mode,
        )
        kl_divergence_z = kl(
            Normal(qz_m, qz_v.sqrt()),
            Normal(torch.zeros_like(qz_m), torch.ones_like(qz_v)),
        ).sum(dim=1)
        if self.model_library_bools[mode]:
            kl_divergence_l = kl(
                Normal(ql_m, ql_v.sqrt()), Normal(local_l_mean, local_l_var.sqrt())
            ).sum(dim=1)
        else:
            kl_divergence_l = torch.zeros_like(kl_divergence_z)
        return reconstruction_loss, kl_divergence_l + kl_divergence_z, 0.0
