"""JVAE (gimVI), MultiEncoder and MultiDecoder against the original scVI 0.5.0.

Golden files come from ``tests/golden/make_golden_autozi_jvae.py`` (run with the
original package): ``jvae_state_dict_parity.json`` and ``jvae_numeric_<case>.pt``
(weights, inputs and outputs per dataset; ``seeded`` outputs only match if the random
stream is consumed in the same order).
"""

import json
from pathlib import Path
from typing import Any, Callable, Dict, List

import numpy as np
import pytest
import torch
from scipy import special, stats

from scvi.models._modules_jvae import MultiDecoder, MultiEncoder
from scvi.models.jvae import JVAE
from scvi.models.log_likelihood import compute_elbo

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
CASE_FILES = sorted(GOLDEN.glob("jvae_numeric_*.pt"))
RTOL, ATOL = 1e-5, 1e-5


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: OpenMP threads only add synchronisation cost (and stall under load)."""
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n_threads)


def _close(actual: Any, expected: Any, what: str) -> None:
    torch.testing.assert_close(
        torch.as_tensor(actual),
        torch.as_tensor(expected),
        rtol=RTOL,
        atol=ATOL,
        msg=lambda m: f"{what}: {m}",
    )


class ListPosterior:
    def __init__(self, batches):
        self.batches = batches
        self.indices = np.arange(sum(len(b[0]) for b in batches))

    def __iter__(self):
        return iter(self.batches)


def _checksum(state: Dict[str, torch.Tensor]) -> float:
    return float(
        sum((i + 1) * float(v.double().sum()) for i, v in enumerate(state.values()))
    )


def test_state_dict_parity_grid() -> None:
    parity = json.loads((GOLDEN / "jvae_state_dict_parity.json").read_text())
    fixed = dict(parity["fixed"])
    positions = np.array(fixed.pop("indices_mappings")[1])
    n_input = fixed["total_genes"]
    rng = np.random.RandomState(0)
    x = torch.from_numpy(rng.poisson(3.0, size=(6, n_input)).astype(np.float32) + 1)
    batch = torch.from_numpy(rng.randint(0, 2, size=(6, 1)))
    labels = torch.from_numpy(rng.randint(0, 3, size=(6, 1)))
    l_mean, l_var = torch.full((6, 1), 3.0), torch.ones(6, 1)
    for entry in parity["entries"]:
        cfg = {
            k: v
            for k, v in entry.items()
            if k not in ("layout", "checksum", "status", "error")
        }

        def build(cfg: Dict[str, Any] = cfg) -> JVAE:
            torch.manual_seed(0)
            return JVAE(
                fixed["dim_input_list"],
                n_input,
                [slice(None), positions],
                fixed["reconstruction_losses"],
                n_latent=fixed["n_latent"],
                dim_hidden_encoder=fixed["dim_hidden_encoder"],
                dim_hidden_decoder_individual=fixed["dim_hidden_decoder_individual"],
                dim_hidden_decoder_shared=fixed["dim_hidden_decoder_shared"],
                **cfg,
            )

        if entry["status"] != "ok":
            # 0.5 builds a (genes, 0) dispersion for gene-batch with n_batch=0 and
            # fails in forward; we refuse at construction.
            with pytest.raises(ValueError, match="n_batch"):
                build()
            continue
        model = build()
        state = model.state_dict()
        layout = parity["layouts"][entry["layout"]]
        assert [[k, list(v.shape)] for k, v in state.items()] == [
            [parity["keys"][i], shape] for i, shape in layout
        ], entry
        assert _checksum(state) == pytest.approx(entry["checksum"], rel=1e-12), entry
        total = 0.0
        for mode, data in enumerate((x, x[:, positions])):
            reconstruction, kl_div, _ = model(
                data, l_mean, l_var, batch, labels, mode=mode
            )
            total = total + (reconstruction + kl_div).sum()
        total.backward()


@pytest.fixture(
    scope="module", params=CASE_FILES, ids=lambda p: p.stem[len("jvae_numeric_") :]
)
def case(request) -> Dict[str, Any]:
    return torch.load(request.param, weights_only=True)


def _mappings(case: Dict[str, Any]) -> List[Any]:
    return [
        slice(None) if m is None else np.array(m, dtype=np.int64)
        for m in case["case"]["mappings"]
    ]


def _build(case: Dict[str, Any]) -> JVAE:
    spec = case["case"]
    return JVAE(
        spec["dim_input_list"],
        case["total_genes"],
        _mappings(case),
        spec["reconstruction_losses"],
        spec["model_library_bools"],
        **spec["kwargs"],
    )


def _model(case: Dict[str, Any]) -> JVAE:
    model = _build(case)
    model.load_state_dict(case["state_dict"], strict=True)
    return model.eval()


def _seeded(case: Dict[str, Any], fn: Callable[..., Any], *args, **kwargs) -> Any:
    torch.manual_seed(case["sampling_seed"])
    with torch.no_grad():
        return fn(*args, **kwargs)


def test_seeded_initialisation(case: Dict[str, Any]) -> None:
    torch.manual_seed(case["seed"])
    model = _build(case)
    expected = case["init_state_dict"]
    assert list(model.state_dict()) == list(expected)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, expected[key], rtol=0, atol=0, msg=key)


def test_outputs_per_mode(case: Dict[str, Any]) -> None:
    model = _model(case)
    inp, det, rnd = case["inputs"], case["deterministic"], case["seeded"]
    mappings = _mappings(case)
    batch, labels = inp["batch_index"], inp["labels"]
    l_mean, l_var = inp["local_l_mean"], inp["local_l_var"]
    n_modes = len(mappings)
    for mode, observed in enumerate(mappings):
        x = inp["full"][:, observed]
        tag = f"m{mode}"
        with torch.no_grad():
            qz_m, qz_v, _, ql_m, ql_v, library = model.encode(x, mode)
            _close(qz_m, det[f"{tag}_qz_m"], f"{tag} qz_m")
            _close(qz_v, det[f"{tag}_qz_v"], f"{tag} qz_v")
            if ql_m is None:
                _close(library, det[f"{tag}_observed_library"], f"{tag} library")
            else:
                _close(ql_m, det[f"{tag}_ql_m"], f"{tag} ql_m")
                _close(ql_v, det[f"{tag}_ql_v"], f"{tag} ql_v")
            decoded = model.decode(
                inp["z_fixed"], mode, inp["library_fixed"], batch, labels
            )
            for key, value in zip(
                ("px_scale", "px_r", "px_rate", "px_dropout"), decoded
            ):
                _close(value, det[f"{tag}_decode_fixed_{key}"], f"{tag} decode {key}")
            lib_mean = library if ql_m is None else ql_m
            _, px_r, rate, dropout = model.decode(qz_m, mode, lib_mean, batch, labels)
            loss = model.reconstruction_loss(
                x, rate[:, observed], px_r[:, observed], dropout[:, observed], mode
            )
            _close(loss, det[f"{tag}_reconstruction_loss"], f"{tag} reconstruction")
            _close(
                model.sample_from_posterior_z(x, mode, deterministic=True),
                det[f"{tag}_z_mean"],
                f"{tag} z mean",
            )
            _close(
                model.sample_from_posterior_l(x, mode, deterministic=True),
                det[f"{tag}_l_mean"],
                f"{tag} l mean",
            )
            for name, method in (
                ("scale", model.sample_scale),
                ("rate", model.sample_rate),
            ):
                _close(
                    method(x, mode, batch, labels, deterministic=True),
                    det[f"{tag}_{name}_det"],
                    f"{tag} {name}",
                )
                other = (mode + 1) % n_modes
                _close(
                    method(
                        x, mode, batch, labels, deterministic=True, decode_mode=other
                    ),
                    det[f"{tag}_{name}_det_decode{other}"],
                    f"{tag} {name} decoded as {other}",
                )
        encoded = _seeded(case, model.encode, x, mode)
        _close(encoded[2], rnd[f"{tag}_encode_z"], f"{tag} z sample")
        _close(encoded[5], rnd[f"{tag}_encode_library"], f"{tag} library sample")
        forward = _seeded(case, model, x, l_mean, l_var, batch, labels, mode=mode)
        _close(forward[0], rnd[f"{tag}_forward_reconstruction"], f"{tag} forward rec")
        _close(forward[1], rnd[f"{tag}_forward_kl"], f"{tag} forward KL")
        assert forward[2] == 0.0
        _close(
            _seeded(case, model.sample_scale, x, mode, batch, labels),
            rnd[f"{tag}_scale"],
            f"{tag} sampled scale",
        )
        _close(
            _seeded(case, model.sample_rate, x, mode, batch, labels),
            rnd[f"{tag}_rate"],
            f"{tag} sampled rate",
        )
        _close(
            _seeded(case, model.sample_from_posterior_l, x, mode),
            rnd[f"{tag}_posterior_l"],
            f"{tag} sampled l",
        )
        split = inp["minibatch_split"]
        tensors = [x, l_mean, l_var, batch, labels]
        halves = [[t[:split] for t in tensors], [t[split:] for t in tensors]]
        elbo = _seeded(case, compute_elbo, model, ListPosterior(halves), mode=mode)
        assert elbo == pytest.approx(float(det[f"{tag}_elbo"]), rel=1e-5)
    if "get_sample_rate" in rnd:
        x0 = inp["full"][:, mappings[0]]
        _close(
            _seeded(case, model.get_sample_rate, x0, batch),
            rnd["get_sample_rate"],
            "get_sample_rate",
        )
    model.train()
    with torch.no_grad():
        for mode, observed in enumerate(mappings):
            _close(
                model.sample_from_posterior_z(
                    inp["full"][:, observed], mode, deterministic=True
                ),
                det[f"m{mode}_train_z_mean"],
                f"m{mode} train-mode z mean",
            )


# --------------------------------------------------------------------------- behaviour


def _small_model(**kwargs) -> JVAE:
    defaults = dict(n_batch=2, n_latent=3, dim_hidden_encoder=8)
    defaults.update(kwargs)
    return JVAE(
        [6, 3],
        6,
        [slice(None), np.array([4, 0, 2])],
        ["zinb", "poisson"],
        [True, False],
        **defaults,
    )


def test_poisson_loss_and_renormalised_rate() -> None:
    torch.manual_seed(0)
    model = _small_model().eval()
    x = torch.tensor([[3.0, 0.0, 1.0], [0.0, 7.0, 2.0]])
    batch = torch.tensor([[0], [1]])
    with torch.no_grad():
        rate = model.sample_rate(x, 1, batch, deterministic=True)
        scale = model.sample_scale(x, 1, batch, deterministic=True)
    observed = rate[:, [4, 0, 2]]
    # the observed library is exactly reproduced on the measured genes
    np.testing.assert_allclose(observed.sum(1).numpy(), x.sum(1).numpy(), rtol=1e-5)
    np.testing.assert_allclose(scale[:, [4, 0, 2]].sum(1).numpy(), 1.0, rtol=1e-6)
    loss = model.reconstruction_loss(x, observed, None, None, 1)
    expected = -stats.poisson.logpmf(
        x.numpy(), observed.numpy().astype(np.float64)
    ).sum(1)
    np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-5)


def test_zinb_loss_closed_form() -> None:
    model = _small_model()
    x = torch.tensor([[0.0, 2.0, 5.0, 1.0, 0.0, 9.0]])
    mu = torch.tensor([[0.4, 1.5, 6.0, 2.0, 3.0, 7.0]])
    theta = torch.tensor([[0.5, 2.0, 9.0, 1.0, 4.0, 20.0]])
    logits = torch.tensor([[-1.0, 0.0, 1.0, -3.0, 2.0, 0.5]])
    loss = model.reconstruction_loss(x, mu, theta, logits, 0)
    xn, mun, thn = (t.numpy().astype(np.float64) for t in (x, mu, theta))
    nb = stats.nbinom.pmf(xn, thn, thn / (thn + mun))
    pi = special.expit(logits.numpy().astype(np.float64))
    expected = -np.log((1 - pi) * nb + pi * (xn == 0)).sum(1)
    np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-5)


def test_multi_modules_shapes_and_heads() -> None:
    encoder = MultiEncoder(2, [5, 3], 4, n_hidden=6, n_cat_list=[2])
    batch = torch.tensor([[0], [1], [1]])
    q_m, q_v, z = encoder(torch.rand(3, 3), 1, batch)
    assert q_m.shape == q_v.shape == z.shape == (3, 4) and (q_v > 0).all()
    with pytest.raises(ValueError, match="head_id=2"):
        encoder(torch.rand(3, 3), 2, batch)
    decoder = MultiDecoder(
        4, 7, n_layers_conditioned=1, n_layers_shared=0, n_cat_list=[2]
    )
    assert decoder.px_decoder_final is None
    scale, px_r, rate, dropout = decoder(z, 0, torch.zeros(3, 1), "gene-cell", batch)
    assert scale.shape == px_r.shape == rate.shape == dropout.shape == (3, 7)
    np.testing.assert_allclose(scale.sum(1).detach().numpy(), 1.0, rtol=1e-6)
    assert decoder(z, 0, torch.zeros(3, 1), "gene", batch)[1] is None


@pytest.mark.parametrize(
    "args, kwargs, message",
    [
        (([], 6, [], [], []), {}, "at least one dataset"),
        (
            ([6, 3], 6, [slice(None)], ["zinb", "nb"], [True, False]),
            {},
            "indices_mappings",
        ),
        (
            ([6, 3], 6, [slice(None), [1, 2]], ["zinb", "nb"], [True, False]),
            {},
            "selects 2",
        ),
        (
            ([6, 3], 6, [slice(None), [1, 2, 9]], ["zinb", "nb"], [True, False]),
            {},
            "outside",
        ),
        (
            ([6, 3], 6, [slice(None), [1, 1, 2]], ["zinb", "nb"], [True, False]),
            {},
            "distinct",
        ),
        (
            ([6, 3], 6, [slice(2), [1, 2, 3]], ["zinb", "nb"], [True, False]),
            {},
            "selects 2",
        ),
        (
            ([6, 3], 6, [slice(None), [0, 1, 2]], ["zinb", "gauss"], [True, False]),
            {},
            "gauss",
        ),
        (
            ([6, 0], 6, [slice(None), []], ["zinb", "nb"], [True, False]),
            {},
            "at least one gene",
        ),
        (
            ([6, 3], 6, [slice(None), [0, 1, 2]], ["zinb", "nb"], [True]),
            {},
            "model_library",
        ),
        (([6], 6, [slice(None)], ["zinb"], [True]), {"n_batch": 0}, "n_batch"),
        (
            ([6], 6, [slice(None)], ["zinb"], [True]),
            {"dispersion": "gene-label"},
            "n_labels",
        ),
        (
            ([6], 6, [slice(None)], ["zinb"], [True]),
            {"dispersion": "cell"},
            "dispersion",
        ),
    ],
)
def test_bad_arguments(args, kwargs, message) -> None:
    options = dict(n_batch=2)
    options.update(kwargs)
    with pytest.raises(ValueError, match=message):
        JVAE(*args, **options)


def test_bad_calls() -> None:
    model = _small_model()
    x = torch.ones(2, 6)
    prior = torch.ones(2, 1)
    with pytest.raises(ValueError, match="pass mode"):
        model(x, prior, prior, torch.zeros(2, 1))
    with pytest.raises(ValueError, match="out of range"):
        model.sample_from_posterior_z(x, mode=2)
    with pytest.raises(ValueError, match="3 genes"):
        model.sample_from_posterior_z(x, mode=1)
    with pytest.raises(ValueError, match="batch_index"):
        model.sample_rate(x, 0, None)
    labelled = JVAE(
        [6], 6, [slice(None)], ["nb"], [True], n_labels=2, dispersion="gene-label"
    )
    with pytest.raises(ValueError, match="labels"):
        labelled.sample_scale(x, 0, None)
    single = JVAE([6], 6, [slice(None)], ["nb"], [True], n_batch=1)
    assert single.sample_from_posterior_z(x).shape == (2, 10)
    reconstruction, kl_div, _ = single(x, prior, prior, torch.zeros(2, 1))
    assert reconstruction.shape == kl_div.shape == (2,)
