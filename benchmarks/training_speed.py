"""Training speed of this package's VAE, side by side with the original scVI 0.5.0.

Trains ``VAE(n_genes, n_batch=2, n_hidden=128, n_latent=10)`` (ZINB, batch size 128, Adam
lr 1e-3, 90% training cells) on seeded synthetic counts -- 3,000 cells x 558 genes and
20,000 cells x 2,000 genes, each with clusters and two batches -- and, with ``--real``,
on ``pbmc10k_pbmc5k_2batch.h5ad``. Each run is a separate process; runs of the
implementations are interleaved on identical data, split and settings, and the median of
``--repeats`` runs is reported with the ratio to the original.

Implementations:

- ``ours``: this package as shipped (fast path on).
- ``ours-reference``: this package with ``scvi.settings.fast_training = False``
  (the plain eager path: no compilation, no fused kernels).
- ``original``: scVI 0.5.0, from the venv given by ``--oracle`` (built with
  ``../shared/oracle/make_env.sh DIR``).

The script refuses to report when other processes keep the CPU busy (figures would be
meaningless); ``--force`` overrides.

Example::

    python benchmarks/training_speed.py --oracle /tmp/scvi05 --repeats 3
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER = os.path.join(ROOT, "benchmarks", "_speed_worker.py")
WORKLOADS = {"small": (3000, 558, 40), "large": (20000, 2000, 4)}


def synthetic_counts(
    n_cells: int, n_genes: int, seed: int = 0
) -> Dict[str, np.ndarray]:
    """Seeded ZINB-like counts with 6 clusters and 2 batches (batch effect per gene)."""
    rng = np.random.default_rng(seed)
    n_clusters = 6
    cluster = rng.integers(n_clusters, size=n_cells)
    batch = rng.integers(2, size=n_cells)
    base = rng.normal(-2.0, 1.5, size=n_genes)
    cluster_shift = rng.normal(0.0, 1.0, size=(n_clusters, n_genes)) * (
        rng.random((n_clusters, n_genes)) < 0.2
    )
    batch_shift = rng.normal(0.0, 0.3, size=(2, n_genes))
    log_mean = base + cluster_shift[cluster] + batch_shift[batch]
    library = rng.lognormal(np.log(3.0), 0.3, size=(n_cells, 1))
    mean = np.exp(log_mean) * library
    theta = 2.0
    counts = rng.poisson(rng.gamma(theta, mean / theta))
    dropout = rng.random((n_cells, n_genes)) < 0.1
    counts[dropout] = 0
    empty = counts.sum(axis=1) == 0
    counts[empty, 0] = 1
    return {
        "X": counts.astype(np.float32),
        "batch_indices": batch.astype(np.int64),
        "labels": cluster.astype(np.int64),
    }


def real_counts(path: str) -> Dict[str, np.ndarray]:
    """Dense counts and batches of an ``.h5ad`` file with a ``batch`` column."""
    import anndata

    adata = anndata.read_h5ad(path)
    X = adata.X.toarray() if hasattr(adata.X, "toarray") else np.asarray(adata.X)
    codes = adata.obs["batch"].astype("category").cat.codes.to_numpy()
    return {"X": X.astype(np.float32), "batch_indices": codes.astype(np.int64)}


def busy_cpus(seconds: float = 2.0) -> float:
    """CPUs kept busy by all processes over ``seconds`` (from /proc/stat)."""

    def snapshot() -> List[int]:
        with open("/proc/stat") as f:
            return [int(v) for v in f.readline().split()[1:]]

    before = snapshot()
    time.sleep(seconds)
    after = snapshot()
    delta = [b - a for a, b in zip(before, after)]
    idle = delta[3] + delta[4]
    total = sum(delta)
    return (os.cpu_count() or 1) * (1 - idle / total) if total else 0.0


def run_once(impl: str, data: str, epochs: int, args: argparse.Namespace) -> Dict:
    cmd = [
        WORKER,
        "--data",
        data,
        "--epochs",
        str(epochs),
        "--threads",
        str(args.threads),
    ]
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if impl == "original":
        python = os.path.join(args.oracle, "bin", "python")
        cwd = tempfile.gettempdir()
    else:
        python = sys.executable
        env["PYTHONPATH"] = ROOT
        cwd = ROOT
        if impl == "ours-reference":
            cmd.append("--reference")
    if args.use_cuda:
        cmd.append("--use-cuda")
    out = subprocess.run(
        [python, *cmd], env=env, cwd=cwd, capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"{impl} run failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def check_idle(limit: float, force: bool) -> None:
    busy = busy_cpus()
    if busy > limit and not force:
        sys.exit(
            f"Refusing to benchmark: other processes keep {busy:.2f} CPUs busy (limit "
            f"{limit}). Timings would be meaningless; stop them, or pass --force."
        )


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--oracle", help="venv of the original scVI 0.5.0 (make_env.sh DIR)"
    )
    parser.add_argument(
        "--workloads",
        nargs="+",
        default=["small", "large"],
        choices=[*WORKLOADS, "real"],
    )
    parser.add_argument(
        "--real",
        default=os.path.join(
            ROOT, "..", "shared", "data", "real", "pbmc10k_pbmc5k_2batch.h5ad"
        ),
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--epochs", type=int, help="override the epochs of every workload"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--use-cuda", action="store_true")
    parser.add_argument(
        "--no-reference",
        action="store_true",
        help="skip the unoptimised path of this package",
    )
    parser.add_argument(
        "--max-busy",
        type=float,
        default=0.3,
        help="refuse when other processes use more CPUs than this",
    )
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)

    impls = ["ours"] + ([] if args.no_reference else ["ours-reference"])
    if args.oracle:
        impls.append("original")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for workload in args.workloads:
            if workload == "real":
                arrays, epochs = real_counts(args.real), 3
            else:
                n_cells, n_genes, epochs = WORKLOADS[workload]
                arrays = synthetic_counts(n_cells, n_genes)
            epochs = args.epochs or epochs
            shape = "x".join(str(s) for s in arrays["X"].shape)
            path = os.path.join(tmp, f"{workload}.npz")
            np.savez(path, **arrays)
            results: Dict[str, List[Dict]] = {impl: [] for impl in impls}
            for repeat in range(args.repeats):
                for impl in impls:
                    check_idle(args.max_busy, args.force)
                    result = run_once(impl, path, epochs, args)
                    results[impl].append(result)
                    print(
                        f"# {workload} {shape} repeat {repeat} {impl}: "
                        f"{result['cells_per_s']:.0f} cells/s, "
                        f"ELBO {result['heldout_elbo']:.3f}",
                        file=sys.stderr,
                    )
            for impl in impls:
                med = {
                    k: statistics.median(r[k] for r in results[impl])
                    for k in ("cells_per_s", "heldout_elbo", "peak_mb")
                }
                rows.append((workload, shape, epochs, impl, med))
    print_table(rows, "original" in impls)


def print_table(rows: List, with_original: bool) -> None:
    originals = {w: m for w, _, _, impl, m in rows if impl == "original"}
    head = "| workload | cells x genes | epochs | implementation | training cells/s | held-out -ELBO | peak MB |"
    if with_original:
        head += " speed vs original | ELBO vs original |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for workload, shape, epochs, impl, med in rows:
        line = (
            f"| {workload} | {shape} | {epochs} | {impl} | {med['cells_per_s']:.0f} | "
            f"{med['heldout_elbo']:.3f} | {med['peak_mb']:.0f} |"
        )
        if with_original:
            ref = originals[workload]
            line += (
                f" {med['cells_per_s'] / ref['cells_per_s']:.2f}x | "
                f"{100 * (med['heldout_elbo'] / ref['heldout_elbo'] - 1):+.2f}% |"
            )
        print(line)


if __name__ == "__main__":
    main()
