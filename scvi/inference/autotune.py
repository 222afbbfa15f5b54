"""Automatic hyperparameter search for scVI models with hyperopt's TPE.

The search runs either in this process (``parallel=False``, a hyperopt
:class:`~hyperopt.Trials`) or concurrently on a Ray cluster (``parallel=True``, Ray Tune
driven by hyperopt's TPE); both return a hyperopt ``Trials`` object. Ray replaced the
MongoDB server and hyperopt worker processes of scVI 0.5, so the classes that drove
them (``FminProcess``, ``HyperoptWorker``, their launcher threads and logging helpers)
no longer exist; :func:`auto_tune_scvi_model` keeps 0.5's signature.
"""

import contextlib
import logging
import os
import pickle
from functools import partial
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Type, Union

import numpy as np
import torch

from scvi._settings import autotune_formatter
from scvi.dataset.dataset import GeneExpressionDataset
from scvi.inference.inference import UnsupervisedTrainer
from scvi.inference.trainer import Trainer
from scvi.models.vae import VAE

try:
    from hyperopt import STATUS_FAIL, STATUS_OK, Trials, fmin, space_eval, tpe
    from hyperopt.exceptions import AllTrialsFailed
except ImportError as _error:
    raise ImportError(
        "scvi.inference.autotune needs hyperopt: install it with "
        "`pip install 'scvi[autotune]'` (or `pip install hyperopt`)."
    ) from _error

from scvi.inference._autotune_checks import check_arguments  # noqa: E402
from scvi.inference._autotune_objective import (  # noqa: E402
    DEFAULT_EARLY_STOPPING_KWARGS,
    _default_space,
    _objective_function,
    _SafeObjective,
)

__all__ = ["auto_tune_scvi_model", "FminTimeoutError", "STATUS_OK", "STATUS_FAIL"]

logger = logging.getLogger(__name__)


class FminTimeoutError(Exception):
    """The parallel search stalled: no trial could run for ``fmin_timeout`` seconds."""


@contextlib.contextmanager
def _search_logs(save_path: str) -> Iterator[None]:
    """Log the search to files in ``save_path``; its progress at least at INFO level.

    ``scvi`` records go to ``scvi_autotune_logfile.txt``, ``hyperopt`` records to
    ``hyperopt_logfile.txt``; the console keeps the level set with
    :func:`scvi.set_verbosity`.
    """
    attached = []
    for name, filename in (
        ("scvi", "scvi_autotune_logfile.txt"),
        ("hyperopt", "hyperopt_logfile.txt"),
    ):
        handler = logging.FileHandler(os.path.join(save_path, filename))
        handler.setFormatter(autotune_formatter)
        logging.getLogger(name).addHandler(handler)
        attached.append((logging.getLogger(name), handler))
    previous_level = logger.level
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.setLevel(previous_level)
        for target, handler in attached:
            target.removeHandler(handler)
            handler.close()


def _default_objective(
    trainer_specific_kwargs: Optional[dict], **kwargs: Any
) -> Callable:
    """The default objective with its fixed arguments; 0.5's early stopping unless given."""
    trainer_specific_kwargs = dict(trainer_specific_kwargs or {})
    if "early_stopping_kwargs" not in trainer_specific_kwargs:
        trainer_specific_kwargs["early_stopping_kwargs"] = dict(
            DEFAULT_EARLY_STOPPING_KWARGS
        )
        monitored = list(trainer_specific_kwargs.get("metrics_to_monitor") or [])
        trainer_specific_kwargs["metrics_to_monitor"] = monitored + ["elbo"]
    return partial(
        _objective_function, trainer_specific_kwargs=trainer_specific_kwargs, **kwargs
    )


def _search_in_process(
    objective: Callable,
    space: Any,
    max_evals: int,
    fmin_timer: Optional[float],
    seed: int,
) -> Trials:
    trials = Trials()
    try:
        fmin(
            fn=objective,
            space=space,
            algo=tpe.suggest,
            max_evals=max_evals,
            timeout=fmin_timer,
            trials=trials,
            rstate=np.random.default_rng(seed),
            show_progressbar=logging.getLogger("scvi").getEffectiveLevel()
            >= logging.WARNING,
            return_argmin=False,
        )
    except AllTrialsFailed:
        # Raised when no trial succeeded, even with return_argmin=False.
        pass
    return trials


def _train_best(objective: Callable, trials: Trials, space: Any) -> Any:
    """Train the best trial's setting: ``objective(best_space, is_best_training=True)``."""
    if STATUS_OK not in trials.statuses():
        errors = [r["error"] for r in trials.results if r.get("error")]
        raise RuntimeError(
            f"All {len(trials.trials)} trials failed, so there is no best model to "
            f"train. First error: {errors[0] if errors else 'unknown'}. Each trial's "
            "error is in trials.results."
        )
    best = trials.best_trial
    if "space" in best["result"]:
        best_space = best["result"]["space"]
    else:
        point = {
            label: values[0] for label, values in best["misc"]["vals"].items() if values
        }
        best_space = space_eval(space, point)
    logger.info("Training the best model on all cells")
    return objective(best_space, is_best_training=True)


def _save_results(
    save_path: str, exp_key: str, trials: Trials, best_trainer: Optional[Any]
) -> None:
    if best_trainer is not None:
        with open(os.path.join(save_path, f"best_trainer_{exp_key}"), "wb") as file:
            pickle.dump(best_trainer, file)
        model = getattr(best_trainer, "model", None)
        if isinstance(model, torch.nn.Module):
            torch.save(
                model.state_dict(), os.path.join(save_path, f"best_model_{exp_key}")
            )
    with open(os.path.join(save_path, f"trials_{exp_key}"), "wb") as file:
        pickle.dump(trials, file)


def auto_tune_scvi_model(
    exp_key: str,
    gene_dataset: Optional[GeneExpressionDataset] = None,
    delayed_populating: bool = False,
    custom_objective_hyperopt: Optional[Callable] = None,
    objective_kwargs: Optional[Dict[str, Any]] = None,
    model_class: Type[torch.nn.Module] = VAE,
    trainer_class: Type[Trainer] = UnsupervisedTrainer,
    metric_name: Optional[str] = None,
    metric_kwargs: Optional[Dict[str, Any]] = None,
    posterior_name: str = "test_set",
    model_specific_kwargs: Optional[dict] = None,
    trainer_specific_kwargs: Optional[dict] = None,
    train_func_specific_kwargs: Optional[dict] = None,
    space: Optional[dict] = None,
    max_evals: int = 100,
    train_best: bool = True,
    pickle_result: bool = True,
    save_path: str = ".",
    use_batches: bool = False,
    parallel: bool = True,
    n_cpu_workers: Optional[int] = None,
    gpu_ids: Optional[List[int]] = None,
    n_workers_per_gpu: int = 1,
    reserve_timeout: float = 180.0,
    fmin_timeout: float = 300.0,
    fmin_timer: Optional[float] = None,
    mongo_port: str = "1234",
    mongo_host: str = "localhost",
    db_name: str = "scvi_db",
    multiple_hosts: bool = False,
    *,
    ray_address: Optional[str] = None,
    seed: Optional[int] = None,
) -> Union[Tuple[Trainer, Trials], Trials]:
    """Search hyperparameters of a model/trainer pair with hyperopt's TPE.

    Each trial samples ``space``, trains a model with early stopping on the test ELBO
    (default ``trainer_specific_kwargs["early_stopping_kwargs"]``: patience 50,
    threshold 0, learning-rate reduction after 25 epochs by 0.2) and scores it with
    ``metric_name`` on ``posterior_name`` (default: the held-out marginal
    log-likelihood, ``marginal_ll(n_mc_samples=100)`` on ``test_set``). A trial that
    raises or scores NaN is recorded as failed (its ``error`` is in its result) and the
    search goes on. Fixed ``*_specific_kwargs`` take precedence over sampled values.

    Parallel searches run on Ray, which replaced scVI 0.5's MongoDB server and hyperopt
    workers (Ray Tune runs the trials, hyperopt's TPE proposes them). With no cluster
    given, a local one is started for the search, with ``n_cpu_workers`` CPU workers and
    ``n_workers_per_gpu`` workers on each GPU of ``gpu_ids``, and shut down afterwards
    (also on error or Ctrl-C). With ``ray_address`` (or the ``RAY_ADDRESS`` environment
    variable, or a Ray already initialised in this process) the trials run on that
    cluster, each on one CPU or on ``1 / n_workers_per_gpu`` of a GPU, as many at once
    as the cluster offers (nodes that join during the search are used), so the same
    call scales to many machines; scvi must be installed on every node. Ray and
    hyperopt are optional: ``pip install 'scvi[autotune]'``.

    Parameters
    ----------
    exp_key
        Name of the search: suffix of the result files and name of the Ray experiment.
    gene_dataset
        The dataset of the default objective.
    delayed_populating
        ``gene_dataset`` is a :class:`~scvi.dataset.dataset.DownloadableDataset` built
        with ``delayed_populating=True``; each worker populates its copy.
    custom_objective_hyperopt
        Objective replacing the default one: called with a point of ``space`` (plus
        ``objective_kwargs``), it returns a loss or a hyperopt result ``dict``. With
        ``train_best`` it is also called with ``is_best_training=True`` and must then
        return the trained trainer.
    objective_kwargs
        Fixed keyword arguments of ``custom_objective_hyperopt``.
    model_class
        Model class, e.g. :class:`~scvi.models.VAE`.
    trainer_class
        Trainer class, e.g. :class:`~scvi.inference.UnsupervisedTrainer`.
    metric_name
        Posterior method to minimise (default ``"marginal_ll"``).
    metric_kwargs
        Its keyword arguments (default ``{"n_mc_samples": 100}`` for ``marginal_ll``).
    posterior_name
        Trainer posterior the metric is computed on.
    model_specific_kwargs, trainer_specific_kwargs, train_func_specific_kwargs
        Fixed arguments of the model, the trainer and its ``train`` method.
    space
        Dict with up to three dicts of hyperopt expressions, ``model_tunable_kwargs``,
        ``trainer_tunable_kwargs`` and ``train_func_tunable_kwargs``. Default (0.5's):
        ``n_latent`` in [5, 15], ``n_hidden`` in {64, 128, 256}, ``n_layers`` in [1, 5],
        ``dropout_rate`` in {0.1, 0.3, 0.5, 0.7}, ``reconstruction_loss`` in
        {"zinb", "nb"} and ``lr`` in {1e-2, 5e-3, 1e-3, 5e-4, 1e-4}.
    max_evals
        Number of trials.
    train_best
        Retrain the best setting on all cells (for the number of epochs early stopping
        chose) and return its trainer.
    pickle_result
        Write ``trials_<exp_key>`` and, with ``train_best``, ``best_trainer_<exp_key>``
        (pickle) and ``best_model_<exp_key>`` (state dict) to ``save_path``.
    save_path
        Folder of the results, of ``scvi_autotune_logfile.txt``,
        ``hyperopt_logfile.txt`` and of the Ray trial logs (``ray_results``).
    use_batches
        Pass ``n_batch=gene_dataset.n_batches`` to the model (else 0).
    parallel
        Run the trials concurrently on Ray (else in this process).
    n_cpu_workers
        CPU workers of the local Ray cluster (default: 0 when GPUs are used, else
        ``os.cpu_count() - 1``).
    gpu_ids
        GPUs of the local Ray cluster (default: all GPUs torch finds). ``[]`` runs every
        trial on a CPU, also on an existing cluster, which otherwise runs the trials
        on its GPUs when it has any.
    n_workers_per_gpu
        Concurrent trials per GPU.
    reserve_timeout
        Kept from 0.5 (time a MongoDB worker waited for a job); Ray schedules trials
        itself and ignores it.
    fmin_timeout
        Parallel search: seconds without any running trial (no worker or resource
        available) before :class:`FminTimeoutError`; ignored with ``multiple_hosts``.
    fmin_timer
        Time budget of the search in seconds (no new trial starts after it; running
        Ray trials are stopped and recorded as failed).
    mongo_port, mongo_host, db_name
        Kept from 0.5 for compatibility and ignored: Ray replaced MongoDB.
    multiple_hosts
        Workers run on other machines: connect to the Ray cluster this machine belongs
        to (``address="auto"``) when none is given, and wait for workers indefinitely.
    ray_address
        Address of an existing Ray cluster (default: ``RAY_ADDRESS``).
    seed
        Seed of the TPE sampler and of each trial's training (torch and numpy): a
        sequential search is reproducible. A parallel search draws the same first 20
        points (TPE's random start), later ones depend on the order trials finish in.
        Without it, the sampler is seeded from numpy's global random state.

    Returns
    -------
    ``(best_trainer, trials)`` with ``train_best``, else ``trials``; ``trials`` is a
    :class:`hyperopt.Trials` whose ``results`` hold each trial's loss, status, history
    and sampled ``space``.

    Examples
    --------
    >>> from scvi.dataset import CortexDataset
    >>> best_trainer, trials = auto_tune_scvi_model(
    ...     "cortex", CortexDataset(), parallel=False, max_evals=20
    ... )
    """
    check_arguments(dict(locals()))
    os.makedirs(save_path, exist_ok=True)
    if space is None:
        space = _default_space()
    if metric_name is None:
        metric_name = "marginal_ll"
        if metric_kwargs is None:
            metric_kwargs = {"n_mc_samples": 100}
    if custom_objective_hyperopt is None:
        objective = _default_objective(
            trainer_specific_kwargs,
            gene_dataset=gene_dataset,
            delayed_populating=delayed_populating,
            model_class=model_class,
            trainer_class=trainer_class,
            metric_name=metric_name,
            metric_kwargs=metric_kwargs,
            posterior_name=posterior_name,
            model_specific_kwargs=model_specific_kwargs,
            train_func_specific_kwargs=train_func_specific_kwargs,
            use_batches=use_batches,
            seed=seed,
        )
    else:
        objective = partial(custom_objective_hyperopt, **(objective_kwargs or {}))
    sampler_seed = seed if seed is not None else int(np.random.randint(2**31 - 1))

    with _search_logs(save_path):
        logger.info("Starting experiment %s (%d trials)", exp_key, max_evals)
        if fmin_timer is not None and train_best:
            logger.warning(
                "fmin_timer and train_best are both set: the run exceeds fmin_timer by "
                "the time it takes to train the best model."
            )
        if parallel:
            from scvi.inference import _autotune_ray

            trials = _autotune_ray.run_parallel_search(
                objective=_SafeObjective(objective),
                space=space,
                exp_key=exp_key,
                max_evals=max_evals,
                storage_path=os.path.join(os.path.abspath(save_path), "ray_results"),
                n_cpu_workers=n_cpu_workers,
                gpu_ids=gpu_ids,
                n_workers_per_gpu=n_workers_per_gpu,
                fmin_timeout=None if multiple_hosts else fmin_timeout,
                fmin_timer=fmin_timer,
                multiple_hosts=multiple_hosts,
                ray_address=ray_address,
                seed=sampler_seed,
            )
        else:
            trials = _search_in_process(
                _SafeObjective(objective), space, max_evals, fmin_timer, sampler_seed
            )
        logger.info(
            "Finished experiment %s: %d trials, %d succeeded",
            exp_key,
            len(trials.trials),
            trials.statuses().count(STATUS_OK),
        )
        best_trainer = _train_best(objective, trials, space) if train_best else None
        if pickle_result:
            _save_results(save_path, exp_key, trials, best_trainer)

    if train_best:
        return best_trainer, trials
    return trials
