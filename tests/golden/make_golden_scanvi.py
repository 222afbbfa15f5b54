"""Regenerate the golden files of the annotation models (SCANVI, VAEC, Classifier).

Developer tool, not part of the test suite: it imports the *original* scVI 0.5.0 (the
oracle), so run it with the oracle's Python and with this repository off the import
path::

    cd /tmp && /path/to/scvi05-venv/bin/python /work/main/tests/golden/make_golden_scanvi.py \
        /work/main/tests/golden

It writes (all with ``torch.save`` of plain dicts, readable with ``weights_only=True``):

``scanvi_parity.pt``
    For SCANVI, VAEC and Classifier over a grid of constructor arguments: whether the
    original constructs and runs (labelled and unlabelled ``forward`` in eval mode plus a
    training backward pass), and the ordered ``(key, shape)`` list of its ``state_dict``.
    Also the complete initial ``state_dict`` of a few models built right after
    ``torch.manual_seed(0)``, to check that initialisation consumes the random stream in
    the same order.
``scanvi_numeric.pt``
    For a handful of configurations: a full ``state_dict`` (batch-norm statistics and
    affine parameters perturbed), fixed inputs, and the original's outputs: class
    probabilities, latents and the three loss terms for labelled and unlabelled
    minibatches -- in eval mode with the latent samples replaced by their means, in train
    mode (no dropout) likewise, and in eval mode with real samples after a fixed seed.
``scanvi_trainers.pt``
    Labelled/unlabelled splits drawn by ``SemiSupervisedTrainer`` for several label
    layouts and seeds; trainer losses (semi-supervised, alternate, classifier) for
    fixed weights and minibatches; and the unlabelled accuracy of a short
    ``JointSemiSupervisedTrainer`` run on 1,000 PBMCs of the embedded dataset (labels
    hidden, and as released). The semi-supervised losses are computed with the
    labels of the full-data minibatch hidden (``None``): 0.5.0 fed the true labels of
    every cell to the ELBO, which the reimplementation deliberately does not do.
"""

import argparse
import gzip
import itertools
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy as np
import torch

import scvi
import scvi.models.modules as oracle_modules
from scvi.dataset import GeneExpressionDataset
from scvi.inference import (
    AlternateSemiSupervisedTrainer,
    ClassifierTrainer,
    SemiSupervisedTrainer,
)
from scvi.models import SCANVI, VAE, VAEC, Classifier

DIMS = dict(n_input=7, n_hidden=5, n_latent=3)
NUM_DIMS = dict(n_input=12, n_hidden=8, n_latent=4)
N_CELLS = 16
SAMPLING_SEED = 1234
DISPERSIONS = ["gene", "gene-batch", "gene-label", "gene-cell"]


def _clone(t: torch.Tensor) -> torch.Tensor:
    return t.detach().clone().contiguous()


def _inputs(n_cells: int, n_genes: int, n_batch: int, n_labels: int, seed: int):
    """Integer counts (one empty cell), batches, labels and library-size priors."""
    rng = np.random.RandomState(seed)
    x = rng.poisson(rng.gamma(0.7, 6.0, size=(n_cells, n_genes))).astype(np.float32)
    x[0] = 0.0
    batch = rng.randint(0, max(n_batch, 1), size=(n_cells, 1)).astype(np.int64)
    labels = rng.randint(0, max(n_labels, 1), size=(n_cells, 1)).astype(np.int64)
    l_mean = rng.uniform(3.0, 5.0, size=(n_cells, 1)).astype(np.float32)
    l_var = rng.uniform(0.2, 1.5, size=(n_cells, 1)).astype(np.float32)
    return dict(
        x=torch.from_numpy(x),
        batch_index=torch.from_numpy(batch),
        y=torch.from_numpy(labels),
        local_l_mean=torch.from_numpy(l_mean),
        local_l_var=torch.from_numpy(l_var),
    )


def _describe(err: Exception) -> str:
    return f"{type(err).__name__}: {err}".splitlines()[0][:300]


def _layout(module: torch.nn.Module) -> List[List[Any]]:
    return [[k, list(v.shape)] for k, v in module.state_dict().items()]


def _pack(module: torch.nn.Module) -> Dict[str, Any]:
    """A state_dict as one float32 vector plus keys, shapes and dtypes (small files).

    Integer entries (batch counters, label-group masks) are small and exact in float32.
    """
    state = module.state_dict()
    return dict(
        keys=list(state),
        shapes=[list(v.shape) for v in state.values()],
        dtypes=[str(v.dtype).replace("torch.", "") for v in state.values()],
        data=torch.cat([v.detach().float().flatten() for v in state.values()]),
    )


def _groups(n_labels: int) -> List[int]:
    return [i % 2 for i in range(n_labels)] if n_labels > 1 else [0]


# --------------------------------------------------------------------------------------
# parity grid
# --------------------------------------------------------------------------------------


def _grid() -> List[Dict[str, Any]]:
    configs = []
    for n_batch, n_labels, n_layers, dispersion, groups, cls in itertools.product(
        [0, 2], [1, 3], [1, 2], DISPERSIONS, [False, True], [False, True]
    ):
        kwargs = dict(
            n_batch=n_batch, n_labels=n_labels, n_layers=n_layers, dispersion=dispersion
        )
        if groups:
            kwargs.update(labels_groups=_groups(n_labels), use_labels_groups=True)
        if cls:
            kwargs.update(
                classifier_parameters=dict(n_hidden=6, n_layers=2, dropout_rate=0.2)
            )
        configs.append(dict(model="SCANVI", kwargs=kwargs))
    for n_batch, n_labels, n_layers, dispersion, loss in itertools.product(
        [0, 2], [1, 3], [1, 2], DISPERSIONS, ["zinb", "nb"]
    ):
        kwargs = dict(
            n_batch=n_batch,
            n_labels=n_labels,
            n_layers=n_layers,
            dispersion=dispersion,
            reconstruction_loss=loss,
        )
        configs.append(dict(model="VAEC", kwargs=kwargs))
    for n_layers, logits, n_labels in itertools.product([1, 2], [False, True], [1, 4]):
        kwargs = dict(n_hidden=5, n_labels=n_labels, n_layers=n_layers, logits=logits)
        configs.append(dict(model="Classifier", kwargs=kwargs))
    return configs


def _build(name: str, kwargs: Dict[str, Any]) -> torch.nn.Module:
    if name == "Classifier":
        return Classifier(DIMS["n_input"], **kwargs)
    cls = {"SCANVI": SCANVI, "VAEC": VAEC}[name]
    return cls(
        DIMS["n_input"], n_hidden=DIMS["n_hidden"], n_latent=DIMS["n_latent"], **kwargs
    )


def _exercise(model: torch.nn.Module, name: str, kwargs: Dict[str, Any]) -> None:
    """Eval passes, then train-mode passes with a backward, labelled and unlabelled."""
    if name == "Classifier":
        x = torch.randn(6, DIMS["n_input"])
        model.eval()
        model(x)
        model.train()
        model(x).sum().backward()
        return
    t = _inputs(6, DIMS["n_input"], kwargs["n_batch"], kwargs["n_labels"], seed=1)
    args = (t["x"], t["local_l_mean"], t["local_l_var"], t["batch_index"])
    model.eval()
    with torch.no_grad():
        model(*args, t["y"])
        model(*args)
        model.classify(t["x"])
    model.train()
    for y in (t["y"], None):
        rec, kl_local, _ = model(*args, y)
        (rec + kl_local).mean().backward()


def make_parity() -> Dict[str, Any]:
    entries = []
    for config in _grid():
        entry = dict(config)
        torch.manual_seed(0)
        try:
            model = _build(config["model"], config["kwargs"])
        except Exception as err:  # record whatever the original raises
            entry.update(status="construct_error", error=_describe(err), layout=None)
            entries.append(entry)
            continue
        entry["layout"] = _layout(model)
        try:
            _exercise(model, config["model"], config["kwargs"])
            entry.update(status="ok", error=None)
        except Exception as err:  # record whatever the original raises
            entry.update(status="forward_error", error=_describe(err))
        entries.append(entry)

    seeded = {}
    for name, kwargs in [
        ("SCANVI", dict(n_batch=2, n_labels=3)),
        ("SCANVI", dict(n_labels=3, labels_groups=[0, 1, 0], use_labels_groups=True)),
        ("VAEC", dict(n_batch=2, n_labels=3, dispersion="gene-cell")),
        ("Classifier", dict(n_hidden=5, n_labels=3, n_layers=2)),
    ]:
        torch.manual_seed(0)
        model = _build(name, kwargs)
        seeded[f"{name}:{sorted(kwargs.items())}"] = dict(
            model=name,
            kwargs=kwargs,
            state_dict=_pack(model),
        )
    layouts: List[List[List[Any]]] = []
    for entry in entries:
        if entry["layout"] is not None:
            if entry["layout"] not in layouts:
                layouts.append(entry["layout"])
            entry["layout"] = layouts.index(entry["layout"])
    return dict(dims=DIMS, entries=entries, layouts=layouts, seeded_init=seeded)


# --------------------------------------------------------------------------------------
# numeric goldens
# --------------------------------------------------------------------------------------

NUMERIC_CONFIGS: Dict[str, Dict[str, Any]] = {
    "scanvi_zinb_gene_b2": dict(model="SCANVI", kwargs=dict(n_batch=2, n_labels=3)),
    "scanvi_nb_genebatch_l2": dict(
        model="SCANVI",
        kwargs=dict(
            n_batch=2,
            n_labels=3,
            n_layers=2,
            dispersion="gene-batch",
            reconstruction_loss="nb",
        ),
    ),
    "scanvi_groups_prior": dict(
        model="SCANVI",
        kwargs=dict(
            n_labels=4,
            labels_groups=[0, 1, 1, 0],
            use_labels_groups=True,
            y_prior=torch.tensor([[0.1, 0.2, 0.3, 0.4]]),
            classifier_parameters=dict(n_hidden=6, n_layers=2, dropout_rate=0.0),
        ),
    ),
    "scanvi_genecell_nolog": dict(
        model="SCANVI",
        kwargs=dict(n_labels=3, dispersion="gene-cell", log_variational=False),
    ),
    "scanvi_one_label": dict(model="SCANVI", kwargs=dict(n_batch=2, n_labels=1)),
    "vaec_zinb_gene_b2": dict(model="VAEC", kwargs=dict(n_batch=2, n_labels=3)),
    "vaec_nb_genecell_nolog": dict(
        model="VAEC",
        kwargs=dict(
            n_batch=0,
            n_labels=3,
            dispersion="gene-cell",
            reconstruction_loss="nb",
            log_variational=False,
            y_prior=torch.tensor([[0.5, 0.3, 0.2]]),
        ),
    ),
    "vaec_genebatch_l2": dict(
        model="VAEC",
        kwargs=dict(n_batch=3, n_labels=4, n_layers=2, dispersion="gene-batch"),
    ),
    "classifier_probs_l2": dict(
        model="Classifier", kwargs=dict(n_labels=5, n_layers=2)
    ),
    "classifier_logits": dict(model="Classifier", kwargs=dict(n_labels=3, logits=True)),
}


def _perturb(model: torch.nn.Module, seed: int) -> None:
    """Make batch-norm statistics and affine parameters matter."""
    gen = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm1d):
            n = module.num_features
            module.running_mean.copy_(0.3 * torch.randn(n, generator=gen))
            module.running_var.copy_(0.5 + 1.5 * torch.rand(n, generator=gen))
            module.weight.data.copy_(0.5 + torch.rand(n, generator=gen))
            module.bias.data.copy_(0.2 * torch.randn(n, generator=gen))


def _terms(out) -> Dict[str, torch.Tensor]:
    reconst, kl_local, kl_global = out
    return dict(
        reconst=_clone(reconst), kl_local=_clone(kl_local), kl_global=float(kl_global)
    )


class _MeanSamples:
    """Replace the encoders' reparameterised samples with the posterior means."""

    def __enter__(self):
        self.saved = oracle_modules.reparameterize_gaussian
        oracle_modules.reparameterize_gaussian = lambda mu, var: mu
        return self

    def __exit__(self, *exc):
        oracle_modules.reparameterize_gaussian = self.saved


def _model_outputs(
    model: torch.nn.Module, t: Dict[str, torch.Tensor]
) -> Dict[str, Any]:
    args = (t["x"], t["local_l_mean"], t["local_l_var"], t["batch_index"])
    out: Dict[str, Any] = {}
    with torch.no_grad():
        model.eval()
        with _MeanSamples():
            out["eval_labelled"] = _terms(model(*args, t["y"]))
            out["eval_unlabelled"] = _terms(model(*args))
            out["classify"] = _clone(model.classify(t["x"]))
            if isinstance(model, SCANVI):
                out["latents"] = [_clone(z) for z in model.get_latents(t["x"], t["y"])]
        torch.manual_seed(SAMPLING_SEED)
        out["seeded_labelled"] = _terms(model(*args, t["y"]))
        torch.manual_seed(SAMPLING_SEED + 1)
        out["seeded_unlabelled"] = _terms(model(*args))
        model.train()
        with _MeanSamples():
            out["train_labelled"] = _terms(model(*args, t["y"]))
            out["train_unlabelled"] = _terms(model(*args))
            out["train_classify"] = _clone(model.classify(t["x"]))
    model.eval()
    return out


def make_numeric() -> Dict[str, Any]:
    result: Dict[str, Any] = {}
    for index, (name, config) in enumerate(NUMERIC_CONFIGS.items()):
        kwargs = dict(config["kwargs"])
        torch.manual_seed(100 + index)
        if config["model"] == "Classifier":
            model = Classifier(
                NUM_DIMS["n_latent"] + 2,
                n_hidden=NUM_DIMS["n_hidden"],
                dropout_rate=0.0,
                **kwargs,
            )
            _perturb(model, 200 + index)
            x = torch.randn(
                N_CELLS,
                NUM_DIMS["n_latent"] + 2,
                generator=torch.Generator().manual_seed(index),
            )
            state = _pack(
                model
            )  # before the train-mode pass updates batch-norm statistics
            with torch.no_grad():
                model.eval()
                eval_out = _clone(model(x))
                model.train()
                train_out = _clone(model(x))
            model.eval()
            result[name] = dict(
                model="Classifier",
                kwargs=kwargs,
                n_input=NUM_DIMS["n_latent"] + 2,
                n_hidden=NUM_DIMS["n_hidden"],
                state_dict=state,
                inputs=dict(x=x),
                outputs=dict(eval=eval_out, train=train_out),
            )
            continue
        cls = {"SCANVI": SCANVI, "VAEC": VAEC}[config["model"]]
        model = cls(
            NUM_DIMS["n_input"],
            n_hidden=NUM_DIMS["n_hidden"],
            n_latent=NUM_DIMS["n_latent"],
            dropout_rate=0.0,
            **kwargs,
        )
        _perturb(model, 200 + index)
        t = _inputs(
            N_CELLS,
            NUM_DIMS["n_input"],
            kwargs.get("n_batch", 0),
            kwargs["n_labels"],
            seed=10 + index,
        )
        result[name] = dict(
            model=config["model"],
            kwargs=kwargs,
            dims=dict(NUM_DIMS, dropout_rate=0.0),
            state_dict=_pack(model),
            inputs=t,
            outputs=_model_outputs(model, t),
        )
    return result


# --------------------------------------------------------------------------------------
# trainers
# --------------------------------------------------------------------------------------


def _dataset(
    labels: np.ndarray, n_genes: int, n_batch: int, seed: int
) -> GeneExpressionDataset:
    rng = np.random.RandomState(seed)
    x = rng.poisson(3.0, size=(len(labels), n_genes)).astype(np.float32)
    batches = rng.randint(0, n_batch, size=len(labels))
    dataset = GeneExpressionDataset()
    dataset.populate_from_data(x, batch_indices=batches, labels=labels)
    return dataset


SPLIT_CASES = [
    dict(sizes=[30, 20, 10], n_per_class=5, seed=0),
    dict(sizes=[30, 20, 10], n_per_class=5, seed=3),
    dict(sizes=[7, 25, 12, 16], n_per_class=7, seed=1),
    dict(sizes=[40], n_per_class=10, seed=2),
    # More labelled cells asked for than the smallest class holds (0.5 quirk recorded).
    dict(sizes=[30, 20, 4], n_per_class=6, seed=0),
]


def make_trainers() -> Dict[str, Any]:
    splits = []
    for case in SPLIT_CASES:
        labels = np.concatenate([np.full(n, k) for k, n in enumerate(case["sizes"])])
        labels = np.random.RandomState(99).permutation(labels)
        dataset = _dataset(labels, 5, 2, seed=7)
        model = SCANVI(
            dataset.nb_genes,
            dataset.n_batches,
            dataset.n_labels,
            n_hidden=4,
            n_latent=2,
        )
        trainer = SemiSupervisedTrainer(
            model,
            dataset,
            n_labelled_samples_per_class=case["n_per_class"],
            seed=case["seed"],
            use_cuda=False,
            show_progbar=False,
        )
        splits.append(
            dict(
                case,
                labels=torch.from_numpy(labels.astype(np.int64)),
                labelled=torch.from_numpy(
                    np.asarray(trainer.labelled_set.indices, dtype=np.int64)
                ),
                unlabelled=torch.from_numpy(
                    np.asarray(trainer.unlabelled_set.indices, dtype=np.int64)
                ),
            )
        )

    losses = {}
    for name, model_name, kwargs in [
        ("scanvi", "SCANVI", dict(n_batch=2, n_labels=3)),
        ("vaec", "VAEC", dict(n_batch=2, n_labels=3)),
    ]:
        labels = np.random.RandomState(5).randint(0, 3, size=40)
        dataset = _dataset(labels, NUM_DIMS["n_input"], 2, seed=8)
        cls = {"SCANVI": SCANVI, "VAEC": VAEC}[model_name]
        torch.manual_seed(11)
        model = cls(
            NUM_DIMS["n_input"],
            n_hidden=NUM_DIMS["n_hidden"],
            n_latent=NUM_DIMS["n_latent"],
            dropout_rate=0.0,
            **kwargs,
        )
        _perturb(model, 12)
        t_all = _inputs(N_CELLS, NUM_DIMS["n_input"], 2, 3, seed=20)
        t_lab = _inputs(6, NUM_DIMS["n_input"], 2, 3, seed=21)
        all_hidden = [
            t_all["x"],
            t_all["local_l_mean"],
            t_all["local_l_var"],
            t_all["batch_index"],
            None,
        ]
        labelled = [
            t_lab["x"],
            t_lab["local_l_mean"],
            t_lab["local_l_var"],
            t_lab["batch_index"],
            t_lab["y"],
        ]
        entry: Dict[str, Any] = dict(
            model=model_name,
            kwargs=kwargs,
            state_dict=_pack(model),
            t_all=t_all,
            t_lab=t_lab,
            kl_weight=0.3,
            classification_ratio=7.0,
        )
        trainer = SemiSupervisedTrainer(
            model,
            dataset,
            n_labelled_samples_per_class=3,
            classification_ratio=7.0,
            use_cuda=False,
            show_progbar=False,
        )
        alternate = AlternateSemiSupervisedTrainer(
            model,
            dataset,
            n_labelled_samples_per_class=3,
            use_cuda=False,
            show_progbar=False,
        )
        with torch.no_grad(), _MeanSamples():
            model.eval()
            for tr in (trainer, alternate):
                tr.kl_weight = 0.3
            entry["semi_supervised_eval"] = float(trainer.loss(all_hidden, labelled))
            entry["alternate_eval"] = float(alternate.loss(all_hidden))
            entry["classifier_eval"] = float(trainer.classifier_trainer.loss(labelled))
            model.train()
            entry["semi_supervised_train"] = float(trainer.loss(all_hidden, labelled))
        model.eval()
        losses[name] = entry

    # ClassifierTrainer on the latent space of a VAE: z only, and z concatenated with l.
    labels = np.random.RandomState(6).randint(0, 4, size=30)
    dataset = _dataset(labels, NUM_DIMS["n_input"], 1, seed=9)
    torch.manual_seed(13)
    vae = VAE(
        NUM_DIMS["n_input"],
        n_hidden=NUM_DIMS["n_hidden"],
        n_latent=NUM_DIMS["n_latent"],
    )
    _perturb(vae, 14)
    t_lab = _inputs(N_CELLS, NUM_DIMS["n_input"], 1, 4, seed=22)
    labelled = [
        t_lab["x"],
        t_lab["local_l_mean"],
        t_lab["local_l_var"],
        t_lab["batch_index"],
        t_lab["y"],
    ]
    sampling = {}
    for zl in (False, True):
        torch.manual_seed(15)
        clf = Classifier(
            NUM_DIMS["n_latent"] + int(zl), n_hidden=6, n_labels=4, dropout_rate=0.0
        )
        _perturb(clf, 16)
        ctrainer = ClassifierTrainer(
            clf,
            dataset,
            sampling_model=vae,
            sampling_zl=zl,
            use_cuda=False,
            show_progbar=False,
        )
        vae.eval()
        clf.eval()
        with torch.no_grad():
            sampling[f"zl={zl}"] = dict(
                classifier_state_dict=_pack(clf),
                loss=float(ctrainer.loss(labelled)),
            )
    losses["classifier_on_vae"] = dict(
        vae_state_dict=_pack(vae),
        t_lab=t_lab,
        results=sampling,
    )
    return dict(splits=splits, losses=losses)


# --------------------------------------------------------------------------------------
# reduced quality run
# --------------------------------------------------------------------------------------

PBMC_NPZ = Path(__file__).resolve().parents[2] / "scvi" / "data" / "pbmc8k_200genes.npz"
QUALITY = dict(
    n_cells=1000, subset_seed=0, n_per_class=10, split_seed=0, epochs=10, seed=0
)


def _pbmc_subset() -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts, labels (cell types sorted by name) and names of a random subset of PBMCs."""
    with np.load(PBMC_NPZ, allow_pickle=False) as archive:
        indptr, indices, data = archive["indptr"], archive["indices"], archive["data"]
        n_cells, n_genes = (int(v) for v in archive["shape"])
        dense = np.zeros((n_cells, n_genes), dtype=np.float32)
        rows = np.repeat(np.arange(n_cells), np.diff(indptr))
        dense[rows, indices] = data
        names, labels = np.unique(archive["cell_types"], return_inverse=True)
    rng = np.random.RandomState(QUALITY["subset_seed"])
    subset = np.sort(rng.choice(n_cells, QUALITY["n_cells"], replace=False))
    kept, labels = np.unique(labels[subset], return_inverse=True)
    return dense[subset], labels, names[kept]


def _genuine_split(labels: np.ndarray, n_per_class: int, seed: int):
    """0.5's draw of labelled cells without its padding of short classes."""
    permutation = np.random.RandomState(seed).permutation(len(labels))
    taken = np.zeros(labels.max() + 1, dtype=int)
    labelled, unlabelled = [], []
    for index in permutation:
        if taken[labels[index]] < n_per_class:
            taken[labels[index]] += 1
            labelled.insert(0, index)
        else:
            unlabelled.append(index)
    return np.array(labelled), np.array(unlabelled)


def make_quality() -> Dict[str, Any]:
    """Unlabelled accuracy of the original after a short JointSemiSupervisedTrainer run."""
    from scvi.inference import JointSemiSupervisedTrainer, UnsupervisedTrainer

    counts, labels, names = _pbmc_subset()
    labelled, unlabelled = _genuine_split(
        labels, QUALITY["n_per_class"], QUALITY["split_seed"]
    )
    released_loss = JointSemiSupervisedTrainer.loss

    def hidden_labels_loss(self, tensors_all, tensors_labelled):
        loss = UnsupervisedTrainer.loss(self, [*tensors_all[:4], None])
        x, y = tensors_labelled[0], tensors_labelled[4]
        classification = torch.nn.functional.cross_entropy(
            self.model.classify(x), y.view(-1)
        )
        return loss + classification * self.classification_ratio

    accuracies = {}
    for name, loss in (("hidden", hidden_labels_loss), ("released", released_loss)):
        JointSemiSupervisedTrainer.loss = loss
        dataset = GeneExpressionDataset()
        dataset.populate_from_data(counts, labels=labels, cell_types=names)
        torch.manual_seed(QUALITY["seed"])
        model = SCANVI(dataset.nb_genes, dataset.n_batches, dataset.n_labels)
        trainer = JointSemiSupervisedTrainer(
            model,
            dataset,
            n_labelled_samples_per_class=QUALITY["n_per_class"],
            use_cuda=False,
            show_progbar=False,
        )
        trainer.labelled_set = trainer.create_posterior(indices=labelled)
        trainer.unlabelled_set = trainer.create_posterior(indices=unlabelled)
        trainer.train(n_epochs=QUALITY["epochs"])
        accuracies[name] = float(trainer.unlabelled_set.accuracy())
    JointSemiSupervisedTrainer.loss = released_loss
    return dict(
        QUALITY,
        labelled=torch.from_numpy(labelled.astype(np.int64)),
        unlabelled=torch.from_numpy(unlabelled.astype(np.int64)),
        accuracy_labels_hidden=accuracies["hidden"],
        accuracy_as_released=accuracies["released"],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args()
    if scvi.__version__ != "0.5.0" or "/work/main" in scvi.__file__:
        sys.exit(f"This must run with the original scVI 0.5.0, not {scvi.__file__}.")
    torch.set_num_threads(1)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    meta = dict(
        scvi_version=str(scvi.__version__), torch_version=str(torch.__version__)
    )
    parity = make_parity()
    torch.save(
        dict(seeded_init=parity.pop("seeded_init"), meta=meta),
        args.out_dir / "scanvi_seeded_init.pt",
    )
    # mtime=0 keeps the compressed file byte-identical across regenerations.
    with gzip.GzipFile(args.out_dir / "scanvi_parity.json.gz", "wb", mtime=0) as handle:
        handle.write(json.dumps(dict(parity, meta=meta)).encode())
    torch.save(
        dict(configs=make_numeric(), meta=meta), args.out_dir / "scanvi_numeric.pt"
    )
    torch.save(
        dict(make_trainers(), quality=make_quality(), meta=meta),
        args.out_dir / "scanvi_trainers.pt",
    )


if __name__ == "__main__":
    main()
