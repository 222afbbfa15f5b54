"""Parallel hyperparameter search on a Ray cluster, driven by hyperopt's TPE.

A :class:`_TpeSearcher` (a Ray Tune searcher) keeps a hyperopt ``Trials`` object and
asks ``hyperopt.tpe.suggest`` for each new point, so the search is hyperopt's TPE and
its result an ordinary ``Trials``. It proposes a point only when a worker is free, so
no trial waits in a queue. Ray Tune runs the trials on the cluster's workers; each
trial reports its hyperopt result dict, pickled, together with its log lines.
"""

import base64
import contextlib
import logging
import math
import os
import pickle
import time
from collections import Counter
from functools import partial
from typing import Any, Callable, Dict, Iterator, List, Optional

import numpy as np
import torch
from hyperopt import STATUS_FAIL, Domain, Trials, space_eval, tpe
from hyperopt.base import JOB_STATE_DONE
from hyperopt.utils import coarse_utcnow

try:
    import ray
    from ray import tune
    from ray.tune import Callback, Stopper
    from ray.tune.search import Searcher
except ImportError as _error:
    raise ImportError(
        "parallel=True runs the search on Ray Tune, which is not installed: install it "
        "with `pip install 'scvi[autotune]'` (or `pip install 'ray[tune]'`), or pass "
        "parallel=False to search in this process."
    ) from _error

logger = logging.getLogger("scvi.inference.autotune")

_PAYLOAD = "scvi_result"
_CPU, _GPU = "cpu", "gpu"
# Set while the search runs: Ctrl-C raises KeyboardInterrupt at once (so that the
# cluster is shut down), Tune prints no progress tables, and Tune may start a trial on
# every free worker at once (the searcher only proposes trials for free workers).
_TUNE_ENVIRONMENT = {
    "TUNE_DISABLE_SIGINT_HANDLER": "1",
    "RAY_AIR_NEW_OUTPUT": "0",
    "TUNE_MAX_PENDING_TRIALS_PG": "1000000",
}


def _identity(point: Any) -> Any:
    return point


def _encode(result: Dict[str, Any]) -> str:
    return base64.b64encode(pickle.dumps(result)).decode("ascii")


def _decode(payload: str) -> Dict[str, Any]:
    return pickle.loads(base64.b64decode(payload))


def _failure(error: str) -> Dict[str, Any]:
    return {"loss": None, "status": STATUS_FAIL, "error": error}


class _ClusterCapacity:
    """Workers an existing Ray cluster offers now (it may grow as nodes join).

    ``n_workers_per_gpu`` trials per GPU (each also takes a CPU) when the cluster has
    GPUs and ``use_gpus``, else one trial per CPU.
    """

    def __init__(self, use_gpus: bool, n_workers_per_gpu: int):
        self.use_gpus = use_gpus
        self.n_workers_per_gpu = n_workers_per_gpu

    def __call__(self) -> Dict[str, int]:
        resources = ray.cluster_resources()
        n_cpus = int(resources.get("CPU", 0))
        n_gpus = resources.get("GPU", 0)
        if self.use_gpus and n_gpus > 0:
            return {_GPU: min(int(n_gpus * self.n_workers_per_gpu), n_cpus)}
        return {_CPU: n_cpus}


class _TpeSearcher(Searcher):
    """Ray Tune searcher proposing hyperopt TPE points, at most ``max_evals`` of them.

    ``capacity()`` gives the number of workers of each kind (``"gpu"``, ``"cpu"``); a
    point is proposed only while a worker is free, GPU workers first. The kind travels
    in the trial config and decides the trial's resources.
    """

    def __init__(
        self,
        space: Any,
        max_evals: int,
        seed: int,
        capacity: Callable[[], Dict[str, int]],
    ):
        super().__init__(metric="loss", mode="min")
        self.space = space
        self.domain = Domain(_identity, space)
        self.trials = Trials()
        self.rng = np.random.default_rng(seed)
        self.max_evals = max_evals
        self.capacity = capacity
        self.live: Dict[str, Dict[str, Any]] = {}

    def _free_kind(self) -> Optional[str]:
        capacity = self.capacity()
        busy = Counter(entry["kind"] for entry in self.live.values())
        return next((k for k in (_GPU, _CPU) if capacity.get(k, 0) > busy[k]), None)

    def suggest(self, trial_id: str) -> Optional[Dict[str, Any]]:
        if len(self.trials.trials) >= self.max_evals:
            return Searcher.FINISHED
        kind = self._free_kind()
        if kind is None:
            return None
        tids = self.trials.new_trial_ids(1)
        self.trials.refresh()
        docs = tpe.suggest(
            tids, self.domain, self.trials, int(self.rng.integers(2**31 - 1))
        )
        self.trials.insert_trial_docs(docs)
        self.trials.refresh()
        doc = next(d for d in self.trials.trials if d["tid"] == tids[0])
        point = {
            label: values[0] for label, values in doc["misc"]["vals"].items() if values
        }
        self.live[trial_id] = {"doc": doc, "kind": kind}
        return {"space": space_eval(self.space, point), "kind": kind}

    def on_trial_complete(
        self, trial_id: str, result: Optional[Dict] = None, error: bool = False
    ) -> None:
        entry = self.live.pop(trial_id, None)
        if entry is None:
            return
        if result and _PAYLOAD in result:
            payload = _decode(result[_PAYLOAD])
            outcome = payload["result"]
            if payload["log"]:
                logger.info(
                    "Log of trial %d (%s):\n%s",
                    entry["doc"]["tid"],
                    outcome.get("worker_name", "unknown worker"),
                    "\n".join(payload["log"]),
                )
        elif error:
            outcome = _failure("the trial did not finish: its worker failed")
        else:
            outcome = _failure("the trial did not finish: the search stopped it")
        self._record(entry["doc"], outcome)

    def _record(self, doc: Dict[str, Any], outcome: Dict[str, Any]) -> None:
        # Failed trials stay in the done state, as in a sequential search: hyperopt
        # hides trials in the error state from Trials.trials.
        doc["result"] = outcome
        doc["state"] = JOB_STATE_DONE
        doc["refresh_time"] = coarse_utcnow()
        self.trials.refresh()

    def close_unfinished(self) -> None:
        """Record every trial that never reported as failed."""
        for entry in self.live.values():
            self._record(entry["doc"], _failure("the trial did not finish"))
        self.live.clear()

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as file:
            pickle.dump(self.__dict__, file)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as file:
            self.__dict__.update(pickle.load(file))


class _Watchdog(Callback, Stopper):
    """Stops the search when no trial has run for ``timeout`` seconds; logs progress."""

    def __init__(self, timeout: Optional[float], max_evals: int):
        self.timeout = timeout
        self.max_evals = max_evals
        self.last_running = time.monotonic()
        self.timed_out = False
        self.n_done = 0

    def on_step_begin(self, iteration: int, trials: List[Any], **info) -> None:
        now = time.monotonic()
        if any(trial.status == "RUNNING" for trial in trials):
            self.last_running = now
        elif self.timeout is not None and now - self.last_running > self.timeout:
            self.timed_out = True

    def on_trial_complete(
        self, iteration: int, trials: List[Any], trial: Any, **info
    ) -> None:
        self.n_done += 1
        logger.info("%d/%d trials done", self.n_done, self.max_evals)

    def on_trial_error(
        self, iteration: int, trials: List[Any], trial: Any, **info
    ) -> None:
        self.n_done += 1
        logger.warning(
            "Trial %s failed on its Ray worker: %s", trial, trial.get_error()
        )

    def __call__(self, trial_id: str, result: Dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        return self.timed_out


class _LogCapture(logging.Handler):
    """Collects the formatted ``scvi`` log lines of a trial, to send them to the driver."""

    def __init__(self):
        super().__init__()
        self.setFormatter(logging.Formatter("%(levelname)s - %(name)s | %(message)s"))
        self.lines: List[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def _run_trial(config: Dict[str, Any], objective: Callable) -> None:
    """Ray Tune trainable: evaluate the objective once and report its result and logs."""
    if config["kind"] == _CPU:
        # Ray leaves the GPUs visible to workers that requested none: hide them.
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    capture = _LogCapture()
    scvi_logger = logging.getLogger("scvi")
    scvi_logger.addHandler(capture)
    try:
        result = objective(config["space"])
    finally:
        scvi_logger.removeHandler(capture)
    loss = result["loss"] if result["status"] != STATUS_FAIL else math.nan
    payload = {"result": result, "log": capture.lines}
    tune.report({"loss": float(loss), _PAYLOAD: _encode(payload)})


class _Resources:
    """Resources of a trial from the worker kind in its config (picklable)."""

    def __init__(self, gpu_share: float):
        self.gpu_share = gpu_share

    def __call__(self, config: Dict[str, Any]) -> "tune.PlacementGroupFactory":
        bundle = {"CPU": 1.0}
        if config.get("kind") == _GPU:
            bundle["GPU"] = self.gpu_share
        return tune.PlacementGroupFactory([bundle])


def _local_slots(
    n_cpu_workers: Optional[int], gpu_ids: Optional[List[int]], n_workers_per_gpu: int
) -> Dict[str, Any]:
    if gpu_ids is None:
        gpu_ids = list(range(torch.cuda.device_count()))
    if n_cpu_workers is None:
        n_cpu_workers = 0 if gpu_ids else max((os.cpu_count() or 1) - 1, 1)
    slots = {_GPU: len(gpu_ids) * n_workers_per_gpu, _CPU: n_cpu_workers}
    if sum(slots.values()) == 0:
        raise ValueError(
            "No worker to run the trials: give n_cpu_workers > 0 or GPUs in gpu_ids."
        )
    return {"slots": slots, "gpu_ids": list(gpu_ids)}


@contextlib.contextmanager
def _environment(values: Dict[str, str]) -> Iterator[None]:
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _ray_cluster(
    address: Optional[str],
    n_cpu_workers: Optional[int],
    gpu_ids: Optional[List[int]],
    n_workers_per_gpu: int,
    multiple_hosts: bool,
) -> Iterator[Callable[[], Dict[str, int]]]:
    """Connect to (or start) the Ray cluster; yield its worker capacity.

    A cluster started here is shut down on exit, also on error or Ctrl-C; a connection
    opened here is closed; an already initialised Ray is left as it is.
    """
    address = (
        address or os.environ.get("RAY_ADDRESS") or ("auto" if multiple_hosts else None)
    )
    if ray.is_initialized() or address is not None:
        if ray.is_initialized():
            logger.info("Using the Ray cluster this process is already connected to")
            owned = False
        else:
            logger.info("Connecting to the Ray cluster at %s", address)
            ray.init(address=address, log_to_driver=False)
            owned = True
        try:
            yield _ClusterCapacity(gpu_ids != [], n_workers_per_gpu)
        finally:
            if owned:
                ray.shutdown()
        return
    local = _local_slots(n_cpu_workers, gpu_ids, n_workers_per_gpu)
    slots = local["slots"]
    logger.info(
        "Starting a local Ray cluster: %d CPU workers, %d workers on GPUs %s",
        slots[_CPU],
        slots[_GPU],
        local["gpu_ids"],
    )
    visible = ",".join(str(i) for i in local["gpu_ids"])
    with _environment({"CUDA_VISIBLE_DEVICES": visible} if visible else {}):
        ray.init(
            num_cpus=sum(slots.values()),
            num_gpus=len(local["gpu_ids"]),
            include_dashboard=False,
            log_to_driver=False,
        )
    try:
        yield partial(dict, slots)
    finally:
        ray.shutdown()
        logger.info("Local Ray cluster shut down")


def run_parallel_search(
    objective: Callable,
    space: Any,
    exp_key: str,
    max_evals: int,
    storage_path: str,
    n_cpu_workers: Optional[int],
    gpu_ids: Optional[List[int]],
    n_workers_per_gpu: int,
    fmin_timeout: Optional[float],
    fmin_timer: Optional[float],
    multiple_hosts: bool,
    ray_address: Optional[str],
    seed: int,
) -> Trials:
    """Run ``max_evals`` trials of ``objective`` on Ray; return them as hyperopt ``Trials``.

    Raises
    ------
    FminTimeoutError
        When no trial could run for ``fmin_timeout`` seconds.
    """
    from scvi.inference.autotune import FminTimeoutError

    with (
        _environment(_TUNE_ENVIRONMENT),
        _ray_cluster(
            ray_address, n_cpu_workers, gpu_ids, n_workers_per_gpu, multiple_hosts
        ) as capacity,
    ):
        searcher = _TpeSearcher(space, max_evals, seed, capacity)
        watchdog = _Watchdog(fmin_timeout, max_evals)
        trainable = tune.with_resources(
            tune.with_parameters(_run_trial, objective=objective),
            _Resources(1.0 / n_workers_per_gpu),
        )
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=searcher,
                num_samples=max_evals,
                time_budget_s=fmin_timer,
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(
                name=exp_key,
                storage_path=storage_path,
                stop=watchdog,
                callbacks=[watchdog],
                verbose=0,
                log_to_file=True,
            ),
        )
        tuner.fit()
    searcher.close_unfinished()
    if watchdog.timed_out:
        raise FminTimeoutError(
            f"No trial could run for {fmin_timeout} s: the Ray cluster has no free worker "
            "with the resources a trial needs (one CPU, or a GPU share). Add workers, or "
            "pass multiple_hosts=True to wait for them indefinitely."
        )
    return searcher.trials
