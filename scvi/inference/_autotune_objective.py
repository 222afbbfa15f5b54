"""The default objective of the hyperparameter search and the guard around any objective."""

import logging
import math
import numbers
import os
import socket
import time
import traceback
from typing import Any, Callable, Dict, Optional, Type, Union

import numpy as np
import torch
from hyperopt import STATUS_FAIL, STATUS_OK, hp

from scvi.dataset.dataset import GeneExpressionDataset
from scvi.inference.inference import UnsupervisedTrainer
from scvi.inference.trainer import Trainer
from scvi.models.vae import VAE

logger = logging.getLogger("scvi.inference.autotune")

SPACE_KEYS = (
    "model_tunable_kwargs",
    "trainer_tunable_kwargs",
    "train_func_tunable_kwargs",
)
DEFAULT_EARLY_STOPPING_KWARGS = {
    "early_stopping_metric": "elbo",
    "save_best_state_metric": "elbo",
    "patience": 50,
    "threshold": 0,
    "reduce_lr_on_plateau": True,
    "lr_patience": 25,
    "lr_factor": 0.2,
}


def _default_space() -> dict:
    """scVI 0.5's default search space (a fresh copy on every call).

    ``n_latent`` in [5, 15], ``n_hidden`` in {64, 128, 256}, ``n_layers`` in [1, 5],
    ``dropout_rate`` in {0.1, 0.3, 0.5, 0.7}, ``reconstruction_loss`` in {zinb, nb} and
    the learning rate in {1e-2, 5e-3, 1e-3, 5e-4, 1e-4}.
    """
    return {
        "model_tunable_kwargs": {
            "n_latent": 5 + hp.randint("n_latent", 11),
            "n_hidden": hp.choice("n_hidden", [64, 128, 256]),
            "n_layers": 1 + hp.randint("n_layers", 5),
            "dropout_rate": hp.choice("dropout_rate", [0.1, 0.3, 0.5, 0.7]),
            "reconstruction_loss": hp.choice("reconstruction_loss", ["zinb", "nb"]),
        },
        "train_func_tunable_kwargs": {
            "lr": hp.choice("lr", [0.01, 0.005, 0.001, 0.0005, 0.0001]),
        },
    }


def _to_builtin(value: Any) -> Any:
    """Numpy scalars (as sampled by hyperopt) to Python scalars, recursively."""
    if isinstance(value, dict):
        return {key: _to_builtin(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_builtin(item) for item in value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _objective_function(
    space: dict,
    gene_dataset: GeneExpressionDataset,
    delayed_populating: bool = False,
    model_class: Type[torch.nn.Module] = VAE,
    trainer_class: Type[Trainer] = UnsupervisedTrainer,
    metric_name: str = "marginal_ll",
    metric_kwargs: Optional[Dict[str, Any]] = None,
    posterior_name: str = "test_set",
    model_specific_kwargs: Optional[dict] = None,
    trainer_specific_kwargs: Optional[dict] = None,
    train_func_specific_kwargs: Optional[dict] = None,
    use_batches: bool = False,
    is_best_training: bool = False,
    seed: Optional[int] = None,
) -> Union[Dict[str, Any], Trainer]:
    """Train one model with the sampled ``space`` and score it (the default objective).

    Fixed (``*_specific_kwargs``) arguments take precedence over sampled ones. The
    model is trained with the trainer's early stopping, restored to its best state, and
    scored with ``metric_name`` on ``posterior_name``. With ``is_best_training`` the
    model is trained on all cells, without monitoring, for the number of epochs
    recorded in ``space`` and the trainer is returned. A NaN score is left for
    :class:`_SafeObjective` to turn into a failed trial.
    """
    start = time.monotonic()
    if seed is not None:
        torch.manual_seed(seed)
        np.random.seed(seed)
    if delayed_populating and gene_dataset.nb_cells == 0:
        gene_dataset.populate()
    space = _to_builtin(space)
    tunable = {key: dict(space.get(key) or {}) for key in SPACE_KEYS}
    model_kwargs = {**tunable["model_tunable_kwargs"], **(model_specific_kwargs or {})}
    fixed_trainer_kwargs = dict(trainer_specific_kwargs or {})
    fixed_train_kwargs = dict(train_func_specific_kwargs or {})
    fixed_trainer_kwargs.setdefault("use_cuda", torch.cuda.device_count() > 0)
    fixed_trainer_kwargs["show_progbar"] = False
    if is_best_training:
        fixed_trainer_kwargs.update(
            train_size=1.0, frequency=None, early_stopping_kwargs={}
        )
        fixed_trainer_kwargs.pop("test_size", None)
        if "n_epochs" in tunable["train_func_tunable_kwargs"]:
            # The epoch count early stopping chose beats a fixed cap.
            fixed_train_kwargs.pop("n_epochs", None)
    else:
        fixed_trainer_kwargs["frequency"] = 1
    train_kwargs = {**tunable["train_func_tunable_kwargs"], **fixed_train_kwargs}
    train_kwargs.setdefault("n_epochs", 1000)
    trainer_kwargs = {**tunable["trainer_tunable_kwargs"], **fixed_trainer_kwargs}

    logger.info(
        "Parameters: model %s, trainer %s, train %s",
        model_kwargs,
        trainer_kwargs,
        train_kwargs,
    )
    model = model_class(
        n_input=gene_dataset.nb_genes,
        n_batch=gene_dataset.n_batches * use_batches,
        **model_kwargs,
    )
    trainer = trainer_class(model, gene_dataset, **trainer_kwargs)
    if is_best_training:
        trainer.train(**train_kwargs)
        return trainer

    posterior = getattr(trainer, posterior_name, None)
    if posterior is None or not callable(getattr(posterior, metric_name, None)):
        raise ValueError(
            f"Cannot score trials with {posterior_name}.{metric_name}(): "
            f"{trainer_class.__name__} has no posterior {posterior_name!r} with a method "
            f"{metric_name!r}. Check posterior_name and metric_name."
        )
    trainer.train(**train_kwargs)
    stopping = trainer.early_stopping
    if stopping.early_stopping_metric is not None:
        key = f"{stopping.early_stopping_metric}_{stopping.on}"
        early_stopping_loss = stopping.best_performance
        early_stopping_loss_is_best = True
    else:
        key = f"elbo_{posterior_name}"
        early_stopping_loss = trainer.history[key][-1] if trainer.history[key] else None
        early_stopping_loss_is_best = False
    epochs_run = trainer.epoch + 1
    best_epoch = (
        trainer.best_epoch if stopping.save_best_state_metric is not None else -1
    )
    n_epochs_best = best_epoch + 1 if best_epoch >= 0 else epochs_run
    loss = float(getattr(posterior, metric_name)(**(metric_kwargs or {})))
    elapsed = time.monotonic() - start
    logger.debug(
        "Trained %d epochs in %.1f s, loss %s (%s)", epochs_run, elapsed, loss, key
    )
    tunable["train_func_tunable_kwargs"]["n_epochs"] = n_epochs_best
    return {
        "loss": loss,
        "early_stopping_loss": early_stopping_loss,
        "early_stopping_loss_is_best": early_stopping_loss_is_best,
        "best_epoch": best_epoch,
        "n_epochs": epochs_run,
        "elapsed_time": elapsed,
        "status": STATUS_OK,
        "history": {name: list(values) for name, values in trainer.history.items()},
        "space": tunable,
    }


class _SafeObjective:
    """Run an objective so that an exception or a NaN loss becomes a failed trial.

    The result is always a hyperopt result ``dict`` with ``worker_name`` (host and
    process) and ``elapsed_time`` unless the objective gave them. Failed trials have
    the loss None (TPE learns only from successful ones) and an ``error``; when the
    objective raised, also its ``traceback`` and the sampled ``space``.
    """

    def __init__(self, objective: Callable):
        self.objective = objective

    def __call__(self, space: Any) -> Dict[str, Any]:
        start = time.monotonic()
        try:
            result = self.objective(space)
        except Exception as error:
            logger.warning("Trial failed with %s: %s", type(error).__name__, error)
            return {
                "loss": None,
                "status": STATUS_FAIL,
                "error": f"{type(error).__name__}: {error}",
                "traceback": traceback.format_exc(),
                "space": _to_builtin(space),
                "elapsed_time": time.monotonic() - start,
                "worker_name": _worker_name(),
            }
        result = dict(result) if isinstance(result, dict) else {"loss": result}
        result.setdefault("status", STATUS_OK)
        result.setdefault("worker_name", _worker_name())
        result.setdefault("elapsed_time", time.monotonic() - start)
        loss = result.get("loss")
        finite = isinstance(loss, numbers.Real) and math.isfinite(loss)
        if result["status"] == STATUS_OK and not finite:
            result["status"] = STATUS_FAIL
            result.setdefault("error", f"the objective returned the loss {loss!r}")
        if result["status"] == STATUS_FAIL:
            result.setdefault("error", "the objective returned the status 'fail'")
            result["loss"] = None
            logger.warning("Trial failed: %s", result["error"])
        elif result["status"] == STATUS_OK:
            result["loss"] = float(loss)
            logger.info("Trial finished with loss %.6g", result["loss"])
        return result
