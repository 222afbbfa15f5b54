"""One timed training run, executed in its own process by ``training_speed.py``.

Runs unchanged against this package or against the original scVI 0.5 (whichever ``scvi``
the interpreter imports): it loads a ``.npz`` workload, trains a VAE with the settings of
issue 8 and prints one JSON line with the figures.
"""

import argparse
import json
import os
import resource
import sys
import time

import numpy as np
import torch


def peak_rss_mb() -> float:
    """Peak resident memory of this process, in MiB.

    ``VmHWM`` belongs to this process alone; ``ru_maxrss`` (the fallback off Linux) can
    carry the peak of the parent that forked it, which here is the benchmark driver.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reference", action="store_true")
    parser.add_argument("--use-cuda", action="store_true")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    import scvi
    from scvi.dataset import GeneExpressionDataset
    from scvi.inference import UnsupervisedTrainer
    from scvi.models import VAE

    if args.reference:
        scvi.settings.fast_training = False

    with np.load(args.data) as data:
        X, batches = data["X"], data["batch_indices"]
    dataset = GeneExpressionDataset()
    dataset.populate_from_data(X, batch_indices=batches)
    del X

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    vae = VAE(dataset.nb_genes, n_batch=2, n_hidden=128, n_latent=10)
    trainer = UnsupervisedTrainer(
        vae,
        dataset,
        train_size=0.9,
        use_cuda=args.use_cuda,
        frequency=None,
        show_progbar=False,
    )
    if args.use_cuda:
        torch.cuda.synchronize()
    begin = time.perf_counter()
    trainer.train(n_epochs=args.epochs, lr=1e-3)
    if args.use_cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - begin
    n_train = len(trainer.train_set.indices)
    with torch.no_grad():
        elbo = trainer.test_set.elbo()
    peak_mb = peak_rss_mb()
    if args.use_cuda:
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    print(
        json.dumps(
            {
                "package": os.path.dirname(scvi.__file__),
                "seconds": seconds,
                "cells_per_s": n_train * args.epochs / seconds,
                "heldout_elbo": float(elbo),
                "peak_mb": peak_mb,
            }
        )
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
