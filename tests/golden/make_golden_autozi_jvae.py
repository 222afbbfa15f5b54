"""Regenerate the AutoZI and gimVI (JVAE) golden files from the original scVI 0.5.0.

Developer tool, not part of the test suite or the package. It imports the *original*
``scvi`` 0.5.0, so run it with the oracle environment and with this repository off the
import path::

    cd /tmp && /tmp/scvi05/bin/python /work/main/tests/golden/make_golden_autozi_jvae.py \
        /work/main/tests/golden

Files written (plain ``torch.save`` dicts of tensors / numbers / strings, and JSON):

``autozi_state_dict_parity.json`` / ``jvae_state_dict_parity.json``
    For grids of AutoZIVAE / JVAE constructor arguments: whether the original
    constructs and runs a forward pass, its ordered ``state_dict`` layout and, for a
    seeded construction, a checksum of its values (which pins the initialisation order).
``autozi_numeric_<name>.pt``
    AutoZIVAE weights (batch norm perturbed), inputs and the original's outputs of every
    public method; seeded outputs were produced right after ``torch.manual_seed``.
``jvae_numeric_<name>.pt``
    The same for JVAE, per dataset (mode).
``autozi_training.pt`` / ``jvae_training.pt``
    A few epochs of UnsupervisedTrainer(AutoZIVAE) and JVAETrainer on small synthetic
    count matrices, seeded: the metric history, final weights and the posterior outputs.
"""

import argparse
import itertools
import json
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import torch

import scvi
from scvi.dataset import GeneExpressionDataset
from scvi.inference import UnsupervisedTrainer
from scvi.inference.jvae_trainer import JVAETrainer
from scvi.models import JVAE, AutoZIVAE
from scvi.models.log_likelihood import (
    compute_elbo,
    compute_marginal_log_likelihood_autozi,
    compute_reconstruction_error,
)

SEED_SAMPLING = 4321


def _c(t: torch.Tensor) -> torch.Tensor:
    return t.detach().clone().contiguous()


def _error(fn: Callable[[], Any]) -> Optional[str]:
    try:
        fn()
    except Exception as err:  # recording whatever the original raises is the point
        return f"{type(err).__name__}: {err}".splitlines()[0][:200]
    return None


def _seeded(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    torch.manual_seed(SEED_SAMPLING)
    with torch.no_grad():
        return fn(*args, **kwargs)


def _perturb_batch_norm(model: torch.nn.Module, seed: int) -> None:
    """Non-trivial running statistics and affine parameters for every batch norm."""
    gen = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm1d):
            n = module.num_features
            module.running_mean.copy_(0.3 * torch.randn(n, generator=gen))
            module.running_var.copy_(0.5 + torch.rand(n, generator=gen))
            module.weight.data.copy_(0.5 + torch.rand(n, generator=gen))
            module.bias.data.copy_(0.2 * torch.randn(n, generator=gen))


def _counts(rng: np.random.RandomState, n_cells: int, n_genes: int) -> np.ndarray:
    x = rng.poisson(rng.gamma(0.6, 5.0, size=(n_cells, n_genes))).astype(np.float32)
    x[rng.rand(n_cells, n_genes) < 0.2] = 0.0
    x[:, 0] += 1.0  # no empty cell (JVAE's observed library is log of the total)
    return x


def _covariates(rng: np.random.RandomState, n_cells: int, n_batch: int, n_labels: int):
    batch = rng.randint(0, max(n_batch, 1), size=(n_cells, 1)).astype(np.int64)
    labels = rng.randint(0, max(n_labels, 1), size=(n_cells, 1)).astype(np.int64)
    l_mean = rng.uniform(3.0, 5.0, size=(n_cells, 1)).astype(np.float32)
    l_var = rng.uniform(0.2, 1.5, size=(n_cells, 1)).astype(np.float32)
    return [torch.from_numpy(a) for a in (batch, labels, l_mean, l_var)]


class ListPosterior:
    """Just enough of a Posterior for the likelihood functions: fixed minibatches."""

    def __init__(self, batches: List[List[torch.Tensor]]):
        self.batches = batches
        self.indices = np.arange(sum(len(b[0]) for b in batches))

    def __iter__(self):
        return iter(self.batches)


# --------------------------------------------------------------------------------------
# state_dict parity
# --------------------------------------------------------------------------------------


def _checksum(state: Dict[str, torch.Tensor]) -> float:
    """``sum_i (i + 1) * sum(entry_i)`` in float64: pins values and their order."""
    return float(
        sum((i + 1) * float(v.double().sum()) for i, v in enumerate(state.values()))
    )


def _layout_entry(
    build: Callable[[], torch.nn.Module],
    run: Callable[[Any], None],
    layouts: List[List[List[Any]]],
    keys: List[str],
):
    """Status, layout (index into ``layouts``; key indices into ``keys``) and checksum."""
    torch.manual_seed(0)
    holder: Dict[str, Any] = {}
    err = _error(lambda: holder.update(model=build()))
    if err is not None:
        return dict(status="construct_error", error=err)
    model = holder["model"]
    state = model.state_dict()
    for key in state:
        if key not in keys:
            keys.append(key)
    layout = [[keys.index(k), list(v.shape)] for k, v in state.items()]
    if layout not in layouts:
        layouts.append(layout)
    entry = dict(layout=layouts.index(layout), checksum=_checksum(state))
    err = _error(lambda: run(model))
    entry.update(status="ok" if err is None else "forward_error", error=err)
    return entry


def make_parity() -> Dict[str, Dict[str, Any]]:
    n_input, n_cells = 7, 6
    rng = np.random.RandomState(3)
    x = torch.from_numpy(_counts(rng, n_cells, n_input))
    batch, labels, l_mean, l_var = _covariates(rng, n_cells, 2, 3)

    autozi_axes = dict(
        zero_inflation=["gene", "gene-batch", "gene-label", "gene-cell"],
        dispersion=["gene", "gene-batch", "gene-label", "gene-cell"],
        priors=[[0.5, 0.5], [None, None], [0.3, None], [None, 0.2]],
        n_batch=[0, 2],
        n_labels=[0, 3],
    )
    autozi, autozi_layouts, autozi_keys = [], [], []
    for values in itertools.product(*autozi_axes.values()):
        cfg = dict(zip(autozi_axes, values))

        def build(cfg=cfg):
            return AutoZIVAE(
                n_input,
                alpha_prior=cfg["priors"][0],
                beta_prior=cfg["priors"][1],
                zero_inflation=cfg["zero_inflation"],
                dispersion=cfg["dispersion"],
                n_batch=cfg["n_batch"],
                n_labels=cfg["n_labels"],
                n_hidden=5,
                n_latent=3,
            )

        def run(model):
            loss, kl_local, kl_global = model(x, l_mean, l_var, batch, labels)
            (loss + kl_local).sum().add(kl_global).backward()

        autozi.append(
            dict(cfg, **_layout_entry(build, run, autozi_layouts, autozi_keys))
        )

    jvae_configs = []
    for dec_ind, dec_shared, dispersion, n_batch in itertools.product(
        [0, 1, 2], [0, 1, 2], ["gene", "gene-batch", "gene-label", "gene-cell"], [0, 2]
    ):
        jvae_configs.append(
            dict(
                n_layers_decoder_individual=dec_ind,
                n_layers_decoder_shared=dec_shared,
                dispersion=dispersion,
                n_batch=n_batch,
                n_labels=3,
                model_library_bools=[True, False],
            )
        )
    for enc_ind, enc_shared, libs in itertools.product(
        [1, 2], [1, 2], [[True, False], [False, True], [True, True]]
    ):
        jvae_configs.append(
            dict(
                n_layers_encoder_individual=enc_ind,
                n_layers_encoder_shared=enc_shared,
                n_layers_decoder_individual=1,
                n_layers_decoder_shared=1,
                n_batch=2,
                model_library_bools=libs,
            )
        )
    positions = np.array([5, 1, 3])
    jvae, jvae_layouts, jvae_keys = [], [], []
    for cfg in jvae_configs:

        def build(cfg=cfg):
            return JVAE(
                [n_input, 3],
                n_input,
                [slice(None), positions],
                ["zinb", "nb"],
                n_latent=3,
                dim_hidden_encoder=6,
                dim_hidden_decoder_individual=5,
                dim_hidden_decoder_shared=4,
                **cfg,
            )

        def run(model):
            total = 0.0
            for mode, data in enumerate((x, x[:, positions])):
                rec, kl_d, _ = model(data, l_mean, l_var, batch, labels, mode=mode)
                total = total + (rec + kl_d).sum()
            total.backward()

        jvae.append(dict(cfg, **_layout_entry(build, run, jvae_layouts, jvae_keys)))
    description = (
        "Original scVI 0.5.0: per configuration, construct/forward status, ordered "
        "state_dict layout (index into 'layouts', each a list of [index into "
        "'keys', shape]) and the "
        "checksum sum_i (i + 1) * sum(entry_i) (float64) of the state_dict right "
        "after torch.manual_seed(0) and construction."
    )
    return dict(
        autozi=dict(
            description=description,
            fixed=dict(n_input=n_input, n_hidden=5, n_latent=3),
            keys=autozi_keys,
            layouts=autozi_layouts,
            entries=autozi,
        ),
        jvae=dict(
            description=description,
            fixed=dict(
                dim_input_list=[n_input, 3],
                total_genes=n_input,
                indices_mappings=["slice(None)", positions.tolist()],
                reconstruction_losses=["zinb", "nb"],
                n_latent=3,
                dim_hidden_encoder=6,
                dim_hidden_decoder_individual=5,
                dim_hidden_decoder_shared=4,
            ),
            keys=jvae_keys,
            layouts=jvae_layouts,
            entries=jvae,
        ),
    )


# --------------------------------------------------------------------------------------
# AutoZI numeric goldens
# --------------------------------------------------------------------------------------

AUTOZI_CASES: Dict[str, Dict[str, Any]] = {
    "gene_fixed_b2": dict(
        n_batch=2,
        dispersion="gene",
        zero_inflation="gene",
        alpha_prior=0.5,
        beta_prior=0.5,
    ),
    "genebatch_learned": dict(
        n_batch=2,
        dispersion="gene-batch",
        zero_inflation="gene-batch",
        alpha_prior=None,
        beta_prior=None,
        minimal_dropout=0.05,
    ),
    "genelabel_alpha_only_nomin": dict(
        n_labels=3,
        dispersion="gene-label",
        zero_inflation="gene-label",
        alpha_prior=0.3,
        beta_prior=None,
        minimal_dropout=0.0,
    ),
    "gene_genecell_l2": dict(
        n_layers=2,
        dispersion="gene-cell",
        zero_inflation="gene",
        alpha_prior=None,
        beta_prior=0.2,
    ),
}
AUTOZI_DIMS = dict(n_hidden=8, n_latent=4, dropout_rate=0.0)
N_GENES, N_CELLS = 12, 16


def make_autozi_case(kwargs: Dict[str, Any], seed: int) -> Dict[str, Any]:
    torch.manual_seed(seed)
    model = AutoZIVAE(N_GENES, **AUTOZI_DIMS, **kwargs)
    init_state = {k: _c(v) for k, v in model.state_dict().items()}
    _perturb_batch_norm(model, seed + 1)
    state = {k: _c(v) for k, v in model.state_dict().items()}
    model.eval()
    rng = np.random.RandomState(seed + 2)
    x = torch.from_numpy(_counts(rng, N_CELLS, N_GENES))
    batch, labels, l_mean, l_var = _covariates(
        rng, N_CELLS, kwargs.get("n_batch", 0), kwargs.get("n_labels", 0)
    )
    gen = torch.Generator().manual_seed(seed + 3)
    logits_grid = 6.0 * torch.randn(N_CELLS, N_GENES, generator=gen)
    n_groups = {"gene": 0, "gene-batch": 2, "gene-label": 3}[kwargs["zero_inflation"]]
    shape = (N_GENES,) if n_groups == 0 else (N_GENES, n_groups)
    fixed_params = torch.rand(shape, generator=gen)
    fixed_params3 = torch.rand((3,) + shape, generator=gen)
    alpha_in = 0.05 + 2.0 * torch.rand(N_GENES, generator=gen)
    beta_in = 0.05 + 2.0 * torch.rand(N_GENES, generator=gen)

    det: Dict[str, torch.Tensor] = {}
    rnd: Dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for key, value in model.get_alphas_betas(as_numpy=False).items():
            det[f"ab_{key}"] = value
        det["global_kl"] = model.compute_global_kl_divergence()
        det["rescaled_dropout"] = model.rescale_dropout(logits_grid)
        det["reshaped_fixed"] = model.reshape_bernoulli(fixed_params, batch, labels)
        det["reshaped_fixed3"] = model.reshape_bernoulli(fixed_params3, batch, labels)
        det["posterior_z_mean"] = model.sample_from_posterior_z(x, give_mean=True)

    inf = _seeded(lambda: model.inference(x, batch, labels))
    for key, value in inf.items():
        rnd[f"inference_{key}"] = value
    inf3 = _seeded(lambda: model.inference(x, batch, labels, n_samples=3))
    for key in ("z", "library", "px_rate", "px_dropout", "bernoulli_params"):
        rnd[f"inference3_{key}"] = inf3[key]
    with torch.no_grad():
        outputs = model.inference(x, batch, labels)
        bp = model.reshape_bernoulli(fixed_params, batch, labels)
        det["reconst_loss_fixed_bp"] = model.get_reconstruction_loss(
            x, outputs["px_rate"], outputs["px_r"], outputs["px_dropout"], bp
        )
        det["reconst_loss_inputs_rate"] = outputs["px_rate"]
        det["reconst_loss_inputs_r"] = outputs["px_r"]
        det["reconst_loss_inputs_dropout"] = outputs["px_dropout"]
    rnd["beta_sample"] = _seeded(
        lambda: model.sample_from_beta_distribution(alpha_in, beta_in)
    )
    rnd["bernoulli1"] = _seeded(lambda: model.sample_bernoulli_params(batch, labels))
    rnd["bernoulli3"] = _seeded(
        lambda: model.sample_bernoulli_params(batch, labels, n_samples=3)
    )
    fwd = _seeded(lambda: model(x, l_mean, l_var, batch, labels))
    for i, value in enumerate(fwd):
        rnd[f"forward_{i}"] = value
    rnd["sample_scale"] = _seeded(lambda: model.get_sample_scale(x, batch, labels))

    halves = [
        [x[:9], l_mean[:9], l_var[:9], batch[:9], labels[:9]],
        [x[9:], l_mean[9:], l_var[9:], batch[9:], labels[9:]],
    ]
    scalars = dict(
        marginal_ll_5=_seeded(
            lambda: compute_marginal_log_likelihood_autozi(
                model, ListPosterior(halves), n_samples_mc=5
            )
        ),
        elbo=_seeded(lambda: compute_elbo(model, ListPosterior(halves))),
        reconstruction_error=_seeded(
            lambda: compute_reconstruction_error(model, ListPosterior(halves))
        ),
    )
    return dict(
        kwargs=dict(AUTOZI_DIMS, **kwargs),
        n_input=N_GENES,
        seed=seed,
        sampling_seed=SEED_SAMPLING,
        init_state_dict=init_state,
        state_dict=state,
        inputs=dict(
            x=x,
            batch_index=batch,
            labels=labels,
            local_l_mean=l_mean,
            local_l_var=l_var,
            logits_grid=logits_grid,
            fixed_params=fixed_params,
            fixed_params3=fixed_params3,
            alpha_in=alpha_in,
            beta_in=beta_in,
            minibatch_split=9,
        ),
        deterministic={k: _c(v) for k, v in det.items()},
        seeded={k: _c(v) for k, v in rnd.items()},
        scalars={k: float(v) for k, v in scalars.items()},
    )


# --------------------------------------------------------------------------------------
# JVAE numeric goldens
# --------------------------------------------------------------------------------------

JVAE_CASES: Dict[str, Dict[str, Any]] = {
    "two_modes_genebatch_dec11": dict(
        dim_input_list=[12, 5],
        mappings=[None, [7, 0, 3, 11, 5]],
        reconstruction_losses=["zinb", "nb"],
        model_library_bools=[True, False],
        kwargs=dict(
            n_layers_decoder_individual=1,
            n_layers_decoder_shared=1,
            n_batch=2,
            dispersion="gene-batch",
        ),
    ),
    "three_modes_genecell_poisson": dict(
        dim_input_list=[12, 4, 6],
        mappings=[None, [2, 9, 4, 1], [0, 1, 2, 3, 4, 5]],
        reconstruction_losses=["nb", "poisson", "zinb"],
        model_library_bools=[True, True, False],
        kwargs=dict(
            n_layers_encoder_individual=2,
            n_layers_encoder_shared=2,
            n_layers_decoder_shared=2,
            n_batch=3,
            dispersion="gene-cell",
        ),
    ),
    "two_modes_genelabel_defaults": dict(
        dim_input_list=[12, 3],
        mappings=[None, [10, 4, 6]],
        reconstruction_losses=["zinb", "zinb"],
        model_library_bools=[False, True],
        kwargs=dict(n_labels=3, dispersion="gene-label", n_batch=2),
    ),
    "two_modes_gene_dec20": dict(
        dim_input_list=[12, 5],
        mappings=[None, [1, 2, 3, 8, 9]],
        reconstruction_losses=["zinb", "nb"],
        model_library_bools=[True, False],
        kwargs=dict(
            n_layers_decoder_individual=2,
            n_layers_decoder_shared=0,
            n_batch=2,
            dispersion="gene",
        ),
    ),
}
JVAE_DIMS = dict(
    n_latent=4,
    dim_hidden_encoder=8,
    dim_hidden_decoder_individual=6,
    dim_hidden_decoder_shared=7,
    dropout_rate_encoder=0.0,
    dropout_rate_decoder=0.0,
)


def _mappings(case: Dict[str, Any]) -> list:
    return [
        slice(None) if m is None else np.array(m, dtype=np.int64)
        for m in case["mappings"]
    ]


def make_jvae_case(case: Dict[str, Any], seed: int) -> Dict[str, Any]:
    torch.manual_seed(seed)
    total = case["dim_input_list"][0]
    mappings = _mappings(case)
    model = JVAE(
        case["dim_input_list"],
        total,
        mappings,
        case["reconstruction_losses"],
        case["model_library_bools"],
        **JVAE_DIMS,
        **case["kwargs"],
    )
    init_state = {k: _c(v) for k, v in model.state_dict().items()}
    _perturb_batch_norm(model, seed + 1)
    state = {k: _c(v) for k, v in model.state_dict().items()}
    model.eval()
    rng = np.random.RandomState(seed + 2)
    full = torch.from_numpy(_counts(rng, N_CELLS, total))
    batch, labels, l_mean, l_var = _covariates(
        rng,
        N_CELLS,
        case["kwargs"].get("n_batch", 0),
        case["kwargs"].get("n_labels", 0),
    )
    gen = torch.Generator().manual_seed(seed + 3)
    z_fixed = torch.randn(N_CELLS, JVAE_DIMS["n_latent"], generator=gen)
    library_fixed = 2.0 + 3.0 * torch.rand(N_CELLS, 1, generator=gen)
    xs = [full[:, m] for m in mappings]

    det: Dict[str, torch.Tensor] = {}
    rnd: Dict[str, torch.Tensor] = {}
    n_modes = len(mappings)
    for mode, x in enumerate(xs):
        with torch.no_grad():
            qz_m, qz_v, _, ql_m, ql_v, library = model.encode(x, mode)
            det[f"m{mode}_qz_m"], det[f"m{mode}_qz_v"] = qz_m, qz_v
            if ql_m is None:
                det[f"m{mode}_observed_library"] = library
            else:
                det[f"m{mode}_ql_m"], det[f"m{mode}_ql_v"] = ql_m, ql_v
            for key, value in zip(
                ("px_scale", "px_r", "px_rate", "px_dropout"),
                model.decode(z_fixed, mode, library_fixed, batch, labels),
            ):
                det[f"m{mode}_decode_fixed_{key}"] = value
            lib_mean = library if ql_m is None else ql_m
            scale, px_r, rate, dropout = model.decode(
                qz_m, mode, lib_mean, batch, labels
            )
            observed = mappings[mode]
            det[f"m{mode}_reconstruction_loss"] = model.reconstruction_loss(
                x, rate[:, observed], px_r[:, observed], dropout[:, observed], mode
            )
            det[f"m{mode}_z_mean"] = model.sample_from_posterior_z(
                x, mode, deterministic=True
            )
            det[f"m{mode}_l_mean"] = model.sample_from_posterior_l(
                x, mode, deterministic=True
            )
            det[f"m{mode}_scale_det"] = model.sample_scale(
                x, mode, batch, labels, deterministic=True
            )
            det[f"m{mode}_rate_det"] = model.sample_rate(
                x, mode, batch, labels, deterministic=True
            )
            other = (mode + 1) % n_modes
            det[f"m{mode}_scale_det_decode{other}"] = model.sample_scale(
                x, mode, batch, labels, deterministic=True, decode_mode=other
            )
            det[f"m{mode}_rate_det_decode{other}"] = model.sample_rate(
                x, mode, batch, labels, deterministic=True, decode_mode=other
            )
        enc = _seeded(model.encode, x, mode)
        rnd[f"m{mode}_encode_z"] = enc[2]
        rnd[f"m{mode}_encode_library"] = enc[5]
        fwd = _seeded(model, x, l_mean, l_var, batch, labels, mode=mode)
        rnd[f"m{mode}_forward_reconstruction"] = fwd[0]
        rnd[f"m{mode}_forward_kl"] = fwd[1]
        rnd[f"m{mode}_scale"] = _seeded(model.sample_scale, x, mode, batch, labels)
        rnd[f"m{mode}_rate"] = _seeded(model.sample_rate, x, mode, batch, labels)
        rnd[f"m{mode}_posterior_l"] = _seeded(model.sample_from_posterior_l, x, mode)
        batches = [
            [x[:9], l_mean[:9], l_var[:9], batch[:9], labels[:9]],
            [x[9:], l_mean[9:], l_var[9:], batch[9:], labels[9:]],
        ]
        det[f"m{mode}_elbo"] = torch.tensor(
            _seeded(compute_elbo, model, ListPosterior(batches), mode=mode)
        )
    if model.dispersion != "gene-label":  # it drops the labels
        rnd["get_sample_rate"] = _seeded(lambda: model.get_sample_rate(xs[0], batch))
    model.train()
    with torch.no_grad():
        for mode, x in enumerate(xs):
            det[f"m{mode}_train_z_mean"] = model.sample_from_posterior_z(
                x, mode, deterministic=True
            )
    model.eval()
    return dict(
        case=dict(case, kwargs=dict(JVAE_DIMS, **case["kwargs"])),
        total_genes=total,
        seed=seed,
        sampling_seed=SEED_SAMPLING,
        init_state_dict=init_state,
        state_dict=state,
        inputs=dict(
            full=full,
            batch_index=batch,
            labels=labels,
            local_l_mean=l_mean,
            local_l_var=l_var,
            z_fixed=z_fixed,
            library_fixed=library_fixed,
            minibatch_split=9,
        ),
        deterministic={k: _c(v) for k, v in det.items()},
        seeded={k: _c(v) for k, v in rnd.items()},
    )


# --------------------------------------------------------------------------------------
# Training goldens
# --------------------------------------------------------------------------------------


def _dataset(x: np.ndarray, batch: np.ndarray, labels: np.ndarray, names) -> Any:
    ds = GeneExpressionDataset()
    ds.populate_from_data(x, batch_indices=batch, labels=labels, gene_names=names)
    return ds


def make_autozi_training() -> Dict[str, Any]:
    rng = np.random.RandomState(11)
    n_cells, n_genes = 90, 15
    x = _counts(rng, n_cells, n_genes)
    x[:, :5] *= (rng.rand(n_cells, 5) > 0.5).astype(np.float32)  # extra zeros
    batch = rng.randint(0, 2, size=n_cells)
    labels = rng.randint(0, 3, size=n_cells)
    ds = _dataset(x, batch, labels, [f"g{i}" for i in range(n_genes)])
    runs = {}
    for name, kwargs in dict(
        gene=dict(zero_inflation="gene", dispersion="gene"),
        genebatch_learned=dict(
            zero_inflation="gene-batch",
            dispersion="gene-batch",
            alpha_prior=None,
            beta_prior=None,
        ),
    ).items():
        torch.manual_seed(5)
        model = AutoZIVAE(
            n_genes, n_batch=2, n_labels=3, n_hidden=16, n_latent=3, **kwargs
        )
        trainer = UnsupervisedTrainer(
            model,
            ds,
            train_size=0.7,
            use_cuda=False,
            frequency=1,
            data_loader_kwargs=dict(batch_size=32),
            n_epochs_kl_warmup=3,
        )
        trainer.show_progbar = False
        trainer.train(n_epochs=4, lr=1e-2)
        torch.manual_seed(6)
        test_ll = trainer.test_set.marginal_ll(n_mc_samples=4)
        torch.manual_seed(7)
        test_rec = trainer.test_set.reconstruction_error()
        runs[name] = dict(
            kwargs=kwargs,
            history={
                k: torch.tensor(v, dtype=torch.float64)
                for k, v in trainer.history.items()
            },
            state_dict={k: _c(v) for k, v in model.state_dict().items()},
            test_marginal_ll=float(test_ll),
            test_reconstruction_error=float(test_rec),
            test_indices=torch.from_numpy(np.asarray(trainer.test_set.indices)),
        )
    return dict(
        description=(
            "UnsupervisedTrainer(AutoZIVAE(15, n_batch=2, n_labels=3, n_hidden=16, "
            "n_latent=3, **kwargs), ds, train_size=0.7, use_cuda=False, frequency=1, "
            "data_loader_kwargs=dict(batch_size=32), n_epochs_kl_warmup=3) after "
            "torch.manual_seed(5); train(n_epochs=4, lr=1e-2); then manual_seed(6) "
            "and test_set.marginal_ll(n_mc_samples=4); manual_seed(7) and "
            "test_set.reconstruction_error()."
        ),
        data=dict(
            x=torch.from_numpy(x),
            batch=torch.from_numpy(batch),
            labels=torch.from_numpy(labels),
        ),
        runs=runs,
    )


def make_jvae_training() -> Dict[str, Any]:
    rng = np.random.RandomState(12)
    n_genes = 14
    seq_x = _counts(rng, 70, n_genes)
    positions = np.array([3, 0, 9, 12, 6])
    fish_x = _counts(rng, 45, n_genes)[:, positions]
    names = np.array([f"g{i}" for i in range(n_genes)])
    seq = _dataset(seq_x, np.zeros(70, int), rng.randint(0, 2, 70), names)
    fish = _dataset(fish_x, np.ones(45, int), rng.randint(0, 2, 45), names[positions])
    torch.manual_seed(8)
    model = JVAE(
        [n_genes, len(positions)],
        n_genes,
        [slice(None), positions],
        ["zinb", "nb"],
        [True, False],
        n_latent=3,
        dim_hidden_encoder=16,
        dim_hidden_decoder_shared=16,
        n_layers_decoder_individual=1,
        n_layers_decoder_shared=1,
        dim_hidden_decoder_individual=8,
        n_batch=2,
        dropout_rate_decoder=0.1,
    )
    discriminator = torch.nn.Sequential(
        torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)
    )
    trainer = JVAETrainer(
        model,
        discriminator,
        [seq, fish],
        train_size=0.8,
        use_cuda=False,
        kappa=0.7,
        n_epochs_kl_warmup=2,
        frequency=1,
        data_loader_kwargs=dict(batch_size=16),
    )
    trainer.show_progbar = False
    trainer.train(n_epochs=3, lr_d=2e-3, lr_g=5e-3)
    torch.manual_seed(9)
    latent = trainer.get_latent()
    imputed = trainer.get_imputed_values(normalized=True)
    imputed_rate = trainer.get_imputed_values(normalized=False, decode_mode=0)
    confusion = trainer.get_discriminator_confusion()
    torch.manual_seed(10)
    magnitude = trainer.get_loss_magnitude()
    return dict(
        description=(
            "JVAETrainer(JVAE(...), nn.Sequential(Linear(3, 8), ReLU, Linear(8, 2)), "
            "[seq, fish], train_size=0.8, use_cuda=False, kappa=0.7, "
            "n_epochs_kl_warmup=2, frequency=1, batch_size=16) after "
            "torch.manual_seed(8) (model then discriminator); train(n_epochs=3, "
            "lr_d=2e-3, lr_g=5e-3); then manual_seed(9) and get_latent, "
            "get_imputed_values (normalized, then rate with decode_mode=0), "
            "get_discriminator_confusion; manual_seed(10) and get_loss_magnitude."
        ),
        data=dict(
            seq_x=torch.from_numpy(seq_x),
            fish_x=torch.from_numpy(fish_x),
            seq_labels=torch.from_numpy(np.asarray(seq.labels).ravel()),
            fish_labels=torch.from_numpy(np.asarray(fish.labels).ravel()),
            positions=torch.from_numpy(positions),
        ),
        history={
            k: torch.tensor(v, dtype=torch.float64) for k, v in trainer.history.items()
        },
        state_dict={k: _c(v) for k, v in model.state_dict().items()},
        discriminator_state_dict={
            k: _c(v) for k, v in discriminator.state_dict().items()
        },
        latent=[torch.from_numpy(a) for a in latent],
        imputed=[torch.from_numpy(a) for a in imputed],
        imputed_rate=[torch.from_numpy(a) for a in imputed_rate],
        confusion=torch.from_numpy(confusion),
        loss_magnitude=[torch.from_numpy(a) for a in magnitude],
    )


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path)
    args = parser.parse_args(argv)
    if scvi.__version__ != "0.5.0":
        sys.exit(f"imported scvi {scvi.__version__} from {scvi.__file__}; need 0.5.0")
    out: Path = args.outdir
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    for model_name, parity in make_parity().items():
        (out / f"{model_name}_state_dict_parity.json").write_text(
            json.dumps(parity, separators=(",", ":"))
        )
    for i, (name, kwargs) in enumerate(AUTOZI_CASES.items()):
        case = make_autozi_case(kwargs, seed=100 + 10 * i)
        torch.save(dict(case, name=name), out / f"autozi_numeric_{name}.pt")
    for i, (name, case) in enumerate(JVAE_CASES.items()):
        result = make_jvae_case(case, seed=200 + 10 * i)
        torch.save(dict(result, name=name), out / f"jvae_numeric_{name}.pt")
    torch.save(make_autozi_training(), out / "autozi_training.pt")
    torch.save(make_jvae_training(), out / "jvae_training.pt")
    for path in sorted(out.glob("*")):
        if path.name.startswith(("autozi_", "jvae_")):
            print(f"{path.name}: {path.stat().st_size / 1024:.1f} KiB")


if __name__ == "__main__":
    main()
