"""Annotation quality: SCANVI + JointSemiSupervisedTrainer, ours against the original 0.5.0.

On ``pbmc8k_200genes.h5ad`` (7,480 PBMCs, 200 genes, 8 cell types) a few cells per cell
type are labelled; SCANVI is trained with ``JointSemiSupervisedTrainer`` (0.5 defaults)
and scored by its accuracy on the unlabelled cells. The same split, seeds and number of
epochs are used for every run; SVC and random-forest baselines
(``compute_accuracy_svc`` / ``_rf`` on raw counts) are fitted on the labelled cells. The
unlabelled accuracy is also recorded during training (``--curve-every`` epochs).

Four runs per seed:

``ours``
    this package (the ELBO of the full-data minibatch is computed without labels);
``oracle``
    the original scVI 0.5.0 as released, which fed the true label of *every* cell to
    that ELBO (labels of the "unlabelled" cells leak into training);
``oracle_hidden``
    the original with that leak removed (same objective as ``ours``);
``ours_leaky``
    this package with 0.5's leak reproduced (same objective as ``oracle``).

Run from the repository root (the oracle runs in a subprocess with its own Python)::

    PYTHONPATH=. python benchmarks/annotation.py --epochs 100 --seeds 0 1 2 \
        --oracle-python /tmp/scvi05/bin/python --out benchmarks/annotation_results.json
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Dict, List

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("ours", "oracle", "oracle_hidden", "ours_leaky")


def default_data_path() -> Path:
    shared = Path(os.environ.get("SCVI_SHARED_DATA", ROOT.parent / "shared" / "data"))
    return shared / "real" / "pbmc8k_200genes.h5ad"


def load_counts(path: Path):
    """Dense counts, integer labels (cell types sorted by name) and the cell-type names."""
    import anndata

    adata = anndata.read_h5ad(path)
    counts = adata.X.toarray() if hasattr(adata.X, "toarray") else np.asarray(adata.X)
    names, labels = np.unique(
        adata.obs["cell_type"].astype(str).to_numpy(), return_inverse=True
    )
    return counts.astype(np.float32), labels.astype(np.int64), names


# ------------------------------------------------------------------------------- worker


def _patch_label_feeding(
    trainer_class: Any, unsupervised_class: Any, feed_labels: bool
) -> None:
    """Make ``trainer_class.loss`` feed (or hide) the full-data labels to the ELBO."""
    import torch.nn.functional as F

    def loss(self, tensors_all, tensors_labelled):
        tensors = list(tensors_all[:5]) if feed_labels else [*tensors_all[:4], None]
        elbo = unsupervised_class.loss(self, tensors)
        x, y = tensors_labelled[0], tensors_labelled[4]
        return (
            elbo
            + F.cross_entropy(self.model.classify(x), y.view(-1))
            * self.classification_ratio
        )

    trainer_class.loss = loss


def run_worker(args: argparse.Namespace) -> Dict[str, Any]:
    """Train one model in this process (ours or the oracle, whichever ``scvi`` imports)."""
    import torch

    import scvi
    from scvi.dataset import GeneExpressionDataset
    from scvi.inference.annotation import JointSemiSupervisedTrainer
    from scvi.inference.inference import UnsupervisedTrainer
    from scvi.models.scanvi import SCANVI
    from scvi.models.vae import VAE

    is_oracle = args.variant.startswith("oracle")
    if is_oracle != (
        str(scvi.__version__) == "0.5.0" and "site-packages" in scvi.__file__
    ):
        raise RuntimeError(
            f"variant {args.variant} imported the wrong scvi: {scvi.__file__}"
        )
    torch.set_num_threads(args.threads)
    if args.variant == "oracle_hidden":
        _patch_label_feeding(
            JointSemiSupervisedTrainer, UnsupervisedTrainer, feed_labels=False
        )
    elif args.variant == "ours_leaky":
        _patch_label_feeding(
            JointSemiSupervisedTrainer, UnsupervisedTrainer, feed_labels=True
        )

    counts, labels, names = load_counts(Path(args.data))
    split = np.load(args.split)
    dataset = GeneExpressionDataset()
    dataset.populate_from_data(counts, labels=labels, cell_types=names)

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    model = SCANVI(dataset.nb_genes, dataset.n_batches, dataset.n_labels)
    pretrain_seconds = 0.0
    if args.pretrain_epochs:
        # 0.5's own recipe (annotation tutorial, ``scanvi_both_ways``): train an
        # unsupervised VAE on every cell, then start SCANVI from its weights.
        vae = VAE(dataset.nb_genes, dataset.n_batches, dataset.n_labels)
        pretrainer = UnsupervisedTrainer(
            vae, dataset, train_size=1.0, use_cuda=False, show_progbar=False
        )
        start = time.time()
        pretrainer.train(n_epochs=args.pretrain_epochs, lr=args.lr)
        pretrain_seconds = time.time() - start
        model.load_state_dict(vae.state_dict(), strict=False)
    trainer = JointSemiSupervisedTrainer(
        model,
        dataset,
        n_labelled_samples_per_class=args.n_labelled,
        classification_ratio=args.classification_ratio,
        n_epochs_kl_warmup=args.kl_warmup,
        use_cuda=False,
        show_progbar=False,
        metrics_to_monitor=[],
        frequency=args.curve_every or None,
    )
    trainer.labelled_set = trainer.create_posterior(indices=split["labelled"])
    trainer.unlabelled_set = trainer.create_posterior(indices=split["unlabelled"])
    trainer.labelled_set.to_monitor = []
    trainer.unlabelled_set.to_monitor = ["accuracy"]
    start = time.time()
    trainer.train(n_epochs=args.epochs, lr=args.lr)
    seconds = time.time() - start
    model.eval()
    y, y_pred = trainer.unlabelled_set.compute_predictions()
    per_class = [float(np.mean(y_pred[y == k] == k)) for k in np.unique(y)]
    return dict(
        variant=args.variant,
        seed=args.seed,
        epochs=args.epochs,
        classification_ratio=args.classification_ratio,
        n_epochs_kl_warmup=args.kl_warmup,
        lr=args.lr,
        curve_every=args.curve_every,
        pretrain_epochs=args.pretrain_epochs,
        pretrain_seconds=pretrain_seconds,
        unlabelled_accuracy=float(np.mean(y == y_pred)),
        unlabelled_balanced_accuracy=float(np.mean(per_class)),
        labelled_accuracy=float(trainer.labelled_set.accuracy()),
        curve=[float(a) for a in trainer.history["accuracy_unlabelled_set"]],
        train_seconds=seconds,
        scvi_file=scvi.__file__,
    )


# ------------------------------------------------------------------------- orchestrator


def baselines(counts: np.ndarray, labels: np.ndarray, split: Dict[str, np.ndarray]):
    sys.path.insert(0, str(ROOT))
    from scvi.inference.annotation import compute_accuracy_rf, compute_accuracy_svc

    train, test = split["labelled"], split["unlabelled"]
    result = {}
    for name, fn in (("svc", compute_accuracy_svc), ("rf", compute_accuracy_rf)):
        start = time.time()
        (_, test_accuracy), _ = fn(
            counts[train], labels[train], counts[test], labels[test]
        )
        result[name] = dict(
            unlabelled_accuracy=test_accuracy.unweighted,
            unlabelled_balanced_accuracy=test_accuracy.weighted,
            seconds=time.time() - start,
        )
    return result


def launch(
    variant: str, seed: int, args: argparse.Namespace, split_file: str
) -> Dict[str, Any]:
    oracle = variant.startswith("oracle")
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if not oracle:
        env["PYTHONPATH"] = str(ROOT)
    command = [
        args.oracle_python if oracle else sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        variant,
        "--seed",
        str(seed),
        "--epochs",
        str(args.epochs),
        "--n-labelled",
        str(args.n_labelled),
        "--classification-ratio",
        str(args.classification_ratio),
        "--kl-warmup",
        str(args.kl_warmup),
        "--pretrain-epochs",
        str(args.pretrain_epochs),
        "--lr",
        str(args.lr),
        "--curve-every",
        str(args.curve_every),
        "--threads",
        str(args.threads),
        "--data",
        str(args.data),
        "--split",
        split_file,
    ]
    done = subprocess.run(
        command,
        cwd=tempfile.gettempdir() if oracle else str(ROOT),
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{variant} seed {seed} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarise(runs: List[Dict[str, Any]], base: Dict[str, Any]) -> str:
    """Markdown tables: final accuracies with the baselines, then accuracy curves."""
    lines = [
        "| run | seeds | unlabelled accuracy (mean ± sd) | balanced accuracy | per seed |",
        "|---|---|---|---|---|",
    ]
    for variant in VARIANTS:
        rows = [r for r in runs if r["variant"] == variant]
        if not rows:
            continue
        acc = np.array([r["unlabelled_accuracy"] for r in rows])
        bal = np.array([r["unlabelled_balanced_accuracy"] for r in rows])
        per_seed = ", ".join(
            f"{r['seed']}: {r['unlabelled_accuracy']:.4f}" for r in rows
        )
        lines.append(
            f"| {variant} | {len(rows)} | {acc.mean():.4f} ± {acc.std():.4f} | "
            f"{bal.mean():.4f} | {per_seed} |"
        )
    for name, values in base.items():
        lines.append(
            f"| {name.upper()} (raw counts) | - | {values['unlabelled_accuracy']:.4f} | "
            f"{values['unlabelled_balanced_accuracy']:.4f} | - |"
        )
    curves = [r for r in runs if r.get("curve")]
    if curves:
        every, n_epochs = curves[0]["curve_every"], curves[0]["epochs"]
        epochs = [min(i * every, n_epochs) for i in range(len(curves[0]["curve"]))]
        lines += [
            "",
            "Unlabelled accuracy during training (mean over seeds):",
            "",
            "| run | " + " | ".join(f"epoch {e}" for e in epochs) + " |",
            "|---|" + "---|" * len(epochs),
        ]
        for variant in VARIANTS:
            rows = [r["curve"] for r in curves if r["variant"] == variant]
            if rows:
                mean = np.mean(np.array(rows), axis=0)
                lines.append(
                    f"| {variant} | " + " | ".join(f"{a:.4f}" for a in mean) + " |"
                )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--n-labelled", type=int, default=10)
    parser.add_argument("--split-seed", type=int, default=0)
    parser.add_argument(
        "--classification-ratio",
        type=float,
        default=50.0,
        help="weight of the classification loss (0.5 default 50; its tutorial used 100)",
    )
    parser.add_argument(
        "--kl-warmup",
        type=int,
        default=400,
        help="epochs of linear KL warm-up (n_epochs_kl_warmup, 0.5 default 400)",
    )
    parser.add_argument("--lr", type=float, default=1e-3, help="learning rate")
    parser.add_argument(
        "--pretrain-epochs",
        type=int,
        default=0,
        help="first train an unsupervised VAE this many epochs on all cells and start "
        "SCANVI from its weights (0.5's scanvi_both_ways recipe); 0: no pre-training",
    )
    parser.add_argument(
        "--curve-every",
        type=int,
        default=10,
        help="record the unlabelled accuracy every this many epochs (0: never)",
    )
    parser.add_argument(
        "--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel")
    parser.add_argument("--data", type=Path, default=default_data_path())
    parser.add_argument(
        "--oracle-python",
        default=os.environ.get("SCVI_ORACLE_PYTHON", "/tmp/scvi05/bin/python"),
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="write the results as JSON"
    )
    parser.add_argument(
        "--worker", choices=VARIANTS, dest="variant", help=argparse.SUPPRESS
    )
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--split", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.variant is not None:
        print(json.dumps(run_worker(args)))
        return

    sys.path.insert(0, str(ROOT))
    from scvi.inference.annotation import draw_labelled_cells

    counts, labels, names = load_counts(args.data)
    labelled, unlabelled = draw_labelled_cells(
        labels, len(names), args.n_labelled, args.split_seed
    )
    split = dict(labelled=labelled, unlabelled=unlabelled)
    with tempfile.NamedTemporaryFile(suffix=".npz", delete=False) as handle:
        np.savez(handle, **split)
        split_file = handle.name
    print(
        f"{len(labels)} cells, {len(names)} cell types; {len(labelled)} labelled "
        f"({args.n_labelled} per type, all cells of smaller types), {args.epochs} epochs, "
        f"classification_ratio {args.classification_ratio}, KL warm-up {args.kl_warmup}, "
        f"lr {args.lr}",
        flush=True,
    )
    base = baselines(counts, labels, split)
    print(json.dumps(base), flush=True)
    jobs = [(v, s) for s in args.seeds for v in args.variants]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(launch, v, s, args, split_file) for v, s in jobs]
        runs = []
        for future in futures:
            runs.append(future.result())
            print(json.dumps(runs[-1]), flush=True)
    os.unlink(split_file)
    table = summarise(runs, base)
    print(table)
    if args.out is not None:
        args.out.write_text(
            json.dumps(
                dict(
                    config=dict(
                        epochs=args.epochs,
                        seeds=args.seeds,
                        n_labelled_per_class=args.n_labelled,
                        classification_ratio=args.classification_ratio,
                        n_epochs_kl_warmup=args.kl_warmup,
                        lr=args.lr,
                        pretrain_epochs=args.pretrain_epochs,
                        split_seed=args.split_seed,
                        n_labelled=int(len(labelled)),
                        n_unlabelled=int(len(unlabelled)),
                    ),
                    baselines=base,
                    runs=runs,
                    table=table,
                ),
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
