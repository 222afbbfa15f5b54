"""totalVI on real CITE-seq data: this package against the original scVI 0.5.0.

One script, three modes::

    # run both implementations side by side and print the comparison (the default)
    cd /work/main && /tmp/venv/bin/python benchmarks/totalvi.py --oracle-python /tmp/scvi05/bin/python

    # or run one implementation (whichever ``scvi`` is importable) and compare later
    cd /work/main && PYTHONPATH=. /tmp/venv/bin/python benchmarks/totalvi.py --worker --out ours.json
    cd /tmp && /tmp/scvi05/bin/python /work/main/benchmarks/totalvi.py --worker --out orig.json
    /tmp/venv/bin/python benchmarks/totalvi.py --compare ours.json orig.json

Data (``SCVI_SHARED_DATA``, default ``../shared/data``): ``real/cbmc_cite_8617.h5ad``
(8,617 cord-blood cells, 2,000 genes, 13 proteins) and ``real/pbmc10k_cite_6855.h5ad``
(6,855 PBMCs, 4,000 genes, 14 proteins). For each, a ``TOTALVI`` with 0.5's defaults is
built right after ``torch.manual_seed(seed)`` (both implementations then start from the
same weights) and trained with ``TotalTrainer`` (0.90 / 0.05 split from the same seed,
batch size 128, Adam lr 4e-3, both KL warm-ups over half the epochs) on one CPU thread.
Reported on the 5 % held-out cells:

* ``elbo``: negative ELBO per cell (mean of ``--eval-repeats`` evaluations);
* ``reconst``, ``reconst_gene``, ``reconst_protein``: reconstruction error per cell;
* ``marginal_ll``: importance-sampled ``-log p(x, y)`` with 100 samples;

and, on all cells, the background probability ``sigmoid(mixing)`` of each protein:
its mean, and its mean among the cells in the top and in the bottom quartile of that
protein's counts (a protein whose high counts are foreground has a low background
probability in the top quartile and a high one in the bottom quartile).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

import h5py
import numpy as np
import scipy.sparse as sp

REPO = Path(__file__).resolve().parents[1]
DATASETS = {
    "cbmc": ("cbmc_cite_8617.h5ad", 12),
    "pbmc10k": ("pbmc10k_cite_6855.h5ad", 8),
}


def shared_data() -> Path:
    return Path(os.environ.get("SCVI_SHARED_DATA", REPO.parent / "shared" / "data"))


def _strings(dataset) -> List[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in dataset[:]]


def read_cite_h5ad(path: Path) -> Dict[str, Any]:
    """Counts (CSR), protein counts and protein names of an ``.h5ad`` file, via h5py."""
    with h5py.File(path, "r") as f:
        group = f["X"]
        x = sp.csr_matrix(
            (group["data"][:], group["indices"][:], group["indptr"][:]),
            shape=tuple(group.attrs["shape"]),
        )
        return dict(
            x=x.astype(np.float32),
            proteins=np.asarray(f["obsm/protein_expression"][:], dtype=np.float32),
            protein_names=_strings(f["uns/protein_names"]),
        )


def background_separation(
    background: np.ndarray, proteins: np.ndarray
) -> Dict[str, list]:
    """Mean background probability per protein, overall and in the count quartiles."""
    top, bottom = [], []
    for j in range(proteins.shape[1]):
        low, high = np.quantile(proteins[:, j], [0.25, 0.75])
        top.append(float(background[proteins[:, j] >= high, j].mean()))
        bottom.append(float(background[proteins[:, j] <= low, j].mean()))
    return dict(
        mean=background.mean(axis=0).tolist(), top_quartile=top, bottom_quartile=bottom
    )


def run_one(name: str, n_epochs: int, args: argparse.Namespace) -> Dict[str, Any]:
    """Train and evaluate totalVI on one dataset with the importable ``scvi``."""
    import torch

    from scvi.dataset import GeneExpressionDataset
    from scvi.dataset.dataset import CellMeasurement
    from scvi.inference.total_inference import TotalPosterior, TotalTrainer
    from scvi.models.totalvi import TOTALVI

    torch.set_num_threads(args.threads)
    data = read_cite_h5ad(shared_data() / "real" / DATASETS[name][0])
    dataset = GeneExpressionDataset()
    dataset.populate_from_data(
        data["x"],
        Ys=[
            CellMeasurement(
                "protein_expression",
                data["proteins"],
                "protein_names",
                np.asarray(data["protein_names"]),
            )
        ],
    )
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    model = TOTALVI(dataset.nb_genes, len(dataset.protein_names))
    warmup = max(1, n_epochs // 2)
    trainer = TotalTrainer(
        model,
        dataset,
        train_size=0.90,
        test_size=0.05,
        n_epochs_kl_warmup=warmup,
        n_epochs_back_kl_warmup=warmup,
        use_cuda=False,
        show_progbar=False,
        seed=args.seed,
    )
    start = time.time()
    trainer.train(n_epochs=n_epochs, lr=4e-3)
    train_time = time.time() - start
    model.eval()
    test = trainer.test_set
    torch.manual_seed(args.seed + 1)
    elbos, genes, proteins = [], [], []
    with torch.no_grad():
        for _ in range(args.eval_repeats):
            elbos.append(test.elbo())
            gene, protein = test.compute_reconstruction_error(model)
            genes.append(gene)
            proteins.append(protein)
        marginal = test.compute_marginal_log_likelihood(n_samples_mc=100)
    full = TotalPosterior(
        model, dataset, use_cuda=False, data_loader_kwargs=dict(batch_size=256)
    )
    mixing = full.get_sample_mixing(n_samples=5, give_mean=True)
    background = 1.0 / (1.0 + np.exp(-mixing))
    return dict(
        dataset=name,
        n_cells=len(dataset),
        n_genes=dataset.nb_genes,
        n_epochs=n_epochs,
        n_test=len(test.indices),
        test_indices_head=[int(i) for i in np.sort(test.indices)[:5]],
        train_time_s=train_time,
        elbo=float(np.mean(elbos)),
        reconst_gene=float(np.mean(genes)),
        reconst_protein=float(np.mean(proteins)),
        reconst=float(np.mean(genes) + np.mean(proteins)),
        marginal_ll=float(marginal),
        protein_names=list(data["protein_names"]),
        background=background_separation(background, data["proteins"]),
    )


def worker(args: argparse.Namespace) -> None:
    import torch

    import scvi

    results = dict(
        implementation="original 0.5.0" if scvi.__version__ == "0.5.0" else "ours",
        scvi_version=scvi.__version__,
        torch_version=torch.__version__,
        threads=args.threads,
        seed=args.seed,
        runs=[
            run_one(name, args.epochs or DATASETS[name][1], args)
            for name in args.datasets
        ],
    )
    Path(args.out).write_text(json.dumps(results, indent=1))


METRICS = ("elbo", "reconst", "reconst_gene", "reconst_protein", "marginal_ll")


def compare(ours_path: Path, orig_path: Path) -> str:
    """A Markdown report of two worker outputs."""
    ours = json.loads(Path(ours_path).read_text())
    orig = json.loads(Path(orig_path).read_text())
    lines = [
        f"Ours (scvi {ours['scvi_version']}) vs original (scvi {orig['scvi_version']}), "
        f"torch {ours['torch_version']}, {ours['threads']} CPU thread(s), seed {ours['seed']}.",
        "",
        "| dataset | epochs | metric (held-out, per cell) | ours | original | rel. diff |",
        "|---|---|---|---|---|---|",
    ]
    for a, b in zip(ours["runs"], orig["runs"]):
        if a["test_indices_head"] != b["test_indices_head"]:
            raise ValueError(f"{a['dataset']}: the two runs used different test cells.")
        for metric in METRICS:
            diff = (a[metric] - b[metric]) / abs(b[metric])
            lines.append(
                f"| {a['dataset']} | {a['n_epochs']} | {metric} | {a[metric]:.2f} | "
                f"{b[metric]:.2f} | {100 * diff:+.2f} % |"
            )
        lines.append(
            f"| {a['dataset']} | {a['n_epochs']} | training time (s) | "
            f"{a['train_time_s']:.0f} | {b['train_time_s']:.0f} | |"
        )
    lines += [
        "",
        "Protein background probability (mean over all cells; mean in the top / bottom "
        "quartile of the protein's counts), ours | original:",
        "",
        "| dataset | protein | mean | top quartile | bottom quartile |",
        "|---|---|---|---|---|",
    ]
    for a, b in zip(ours["runs"], orig["runs"]):
        for j, protein in enumerate(a["protein_names"]):
            cells = [
                f"{a['background'][key][j]:.2f} / {b['background'][key][j]:.2f}"
                for key in ("mean", "top_quartile", "bottom_quartile")
            ]
            lines.append(f"| {a['dataset']} | {protein} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def drive(args: argparse.Namespace) -> None:
    """Run both implementations concurrently (one process each) and compare."""
    out_dir = Path(args.out_dir or tempfile.mkdtemp(prefix="totalvi_bench_"))
    out_dir.mkdir(parents=True, exist_ok=True)
    common = ["--worker", "--seed", str(args.seed), "--threads", str(args.threads)]
    common += ["--eval-repeats", str(args.eval_repeats), "--datasets", *args.datasets]
    if args.epochs:
        common += ["--epochs", str(args.epochs)]
    script = str(Path(__file__).resolve())
    env_ours = dict(os.environ, PYTHONPATH=str(REPO))
    env_orig = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    processes = [
        subprocess.Popen(
            [sys.executable, script, *common, "--out", str(out_dir / "ours.json")],
            env=env_ours,
            cwd=str(REPO),
        ),
        subprocess.Popen(
            [args.oracle_python, script, *common, "--out", str(out_dir / "orig.json")],
            env=env_orig,
            cwd=tempfile.gettempdir(),
        ),
    ]
    if any(process.wait() != 0 for process in processes):
        sys.exit("A benchmark worker failed; see its output above.")
    print(compare(out_dir / "ours.json", out_dir / "orig.json"))
    print(f"\nRaw results: {out_dir}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--worker", action="store_true", help="run the importable scvi only"
    )
    parser.add_argument("--compare", nargs=2, metavar=("OURS", "ORIGINAL"))
    parser.add_argument("--oracle-python", default="/tmp/scvi05/bin/python")
    parser.add_argument(
        "--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS)
    )
    parser.add_argument(
        "--epochs", type=int, help="epochs for every dataset (default per dataset)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--eval-repeats", type=int, default=3)
    parser.add_argument("--out", default="totalvi_results.json")
    parser.add_argument("--out-dir")
    args = parser.parse_args()
    if args.compare:
        print(compare(*args.compare))
    elif args.worker:
        worker(args)
    else:
        drive(args)


if __name__ == "__main__":
    main()
