"""Parallel hyperparameter search on Ray (``parallel=True``) of scvi.inference.autotune.

Unit tests of the searcher, watchdog, trial runner and cluster set-up use fakes. The
searches run on real local Ray clusters: one the search starts itself (2 CPU workers,
default objective), then one this process connects to (1 CPU, custom objectives; one
worker keeps it cheap, as every Ray worker imports scvi and torch). Every test has a
deadline (the test fails, and the cluster is shut down) and a hard limit (the test
process exits).
"""

import contextlib
import faulthandler
import logging
import os
import pickle
import signal
import time
from functools import partial
from types import SimpleNamespace
from typing import Iterator

import numpy as np
import pytest
import ray
from hyperopt import STATUS_FAIL, STATUS_OK, hp
from ray.tune.search import Searcher
from ray.util.placement_group import placement_group, remove_placement_group

from scvi.dataset import SyntheticDataset
from scvi.inference import UnsupervisedTrainer, _autotune_ray
from scvi.inference._autotune_objective import _SafeObjective
from scvi.inference.autotune import FminTimeoutError, auto_tune_scvi_model

DEADLINE_S = 150
OPTIMUM = -0.7


@contextlib.contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Raise TimeoutError in the test after ``seconds``; exit the process 60 s later."""

    def expire(signum, frame):
        raise TimeoutError(f"the Ray test ran longer than {seconds} s")

    faulthandler.dump_traceback_later(seconds + 60, exit=True)
    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        faulthandler.cancel_dump_traceback_later()


@pytest.fixture(autouse=True)
def _deadline():
    with deadline(DEADLINE_S):
        yield


@pytest.fixture(scope="module")
def cluster():
    """A Ray cluster with 1 CPU that this test process is connected to."""
    with deadline(DEADLINE_S):
        ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture
def blocked_cluster(cluster):
    """The cluster with its CPU reserved: no trial can start."""
    group = placement_group([{"CPU": 1}])
    ray.get(group.ready(), timeout=60)
    try:
        yield
    finally:
        remove_placement_group(group)


def bowl(space):
    x = space["x"]
    if x > 1.5:
        raise RuntimeError("outside the bowl")
    return (x - OPTIMUM) ** 2


def report(config):
    """What a Ray trial reports for ``config``: the encoded guarded result and its log."""
    result = _SafeObjective(bowl)(config["space"])
    payload = {"result": result, "log": ["INFO - scvi | trained"]}
    return {
        "loss": result.get("loss"),
        _autotune_ray._PAYLOAD: _autotune_ray._encode(payload),
    }


def test_searcher_is_hyperopt_tpe_on_free_workers(tmp_path):
    capacity = {"gpu": 1, "cpu": 1}
    searcher = _autotune_ray._TpeSearcher(
        {"x": hp.uniform("x", -2.0, 2.0)}, 40, 0, partial(dict, capacity)
    )
    first, second = searcher.suggest("t0"), searcher.suggest("t1")
    # A GPU worker is used first, then the CPU worker; then no worker is free.
    assert (first["kind"], second["kind"]) == ("gpu", "cpu")
    assert searcher.suggest("t2") is None
    searcher.on_trial_complete("t1", report(second))
    third = searcher.suggest("t2")
    assert third["kind"] == "cpu"
    # A trial whose worker died frees its worker and is recorded as failed.
    searcher.on_trial_complete("t0", None, error=True)
    searcher.on_trial_complete("t2", report(third))
    # The capacity is read on every suggestion (a cluster may grow).
    capacity["cpu"] = 3
    configs = {f"t{i}": searcher.suggest(f"t{i}") for i in range(3, 7)}
    assert [c["kind"] for c in configs.values()] == ["gpu", "cpu", "cpu", "cpu"]
    for i in range(3, 40):
        trial_id = f"t{i}"
        if trial_id not in configs:
            configs[trial_id] = searcher.suggest(trial_id)
        searcher.on_trial_complete(trial_id, report(configs[trial_id]))
    assert searcher.suggest("t40") is Searcher.FINISHED and not searcher.live

    trials = searcher.trials
    assert len(trials.trials) == 40
    xs = np.array([t["misc"]["vals"]["x"][0] for t in trials.trials])
    # The sampled point of each trial is the config it was run with.
    assert all(configs[f"t{i}"]["space"]["x"] == xs[i] for i in range(3, 40))
    statuses = np.array(trials.statuses())
    assert statuses[0] == STATUS_FAIL and "worker failed" in trials.results[0]["error"]
    np.testing.assert_array_equal(statuses[1:] == STATUS_FAIL, xs[1:] > 1.5)
    assert all(
        "outside the bowl" in r["error"]
        for r in trials.results[1:]
        if r["loss"] is None
    )
    # TPE concentrates its points near the optimum, beyond what 40 random draws give.
    assert abs(trials.best_trial["misc"]["vals"]["x"][0] - OPTIMUM) < 0.05
    assert trials.best_trial["result"]["loss"] == pytest.approx(
        np.min((xs[statuses == STATUS_OK] - OPTIMUM) ** 2)
    )
    # save/restore keep the search state.
    searcher.save(str(tmp_path / "searcher.pkl"))
    restored = _autotune_ray._TpeSearcher(
        {"x": hp.uniform("x", -2.0, 2.0)}, 1, 1, partial(dict, {"cpu": 1})
    )
    restored.restore(str(tmp_path / "searcher.pkl"))
    assert restored.trials.losses() == trials.losses()


def test_searcher_marks_unfinished_trials_failed():
    searcher = _autotune_ray._TpeSearcher(
        {"x": hp.uniform("x", 0, 1)}, 3, 0, partial(dict, {"cpu": 2})
    )
    for trial_id in ("a", "b"):
        assert searcher.suggest(trial_id)["kind"] == "cpu"
    searcher.on_trial_complete("a", {"loss": 0.0})
    searcher.close_unfinished()
    assert searcher.trials.statuses() == [STATUS_FAIL, STATUS_FAIL]
    assert "stopped it" in searcher.trials.results[0]["error"]
    assert "did not finish" in searcher.trials.results[1]["error"]


def test_cluster_capacity(monkeypatch):
    resources = {"CPU": 6.0, "GPU": 2.0}
    monkeypatch.setattr(
        _autotune_ray, "ray", SimpleNamespace(cluster_resources=lambda: resources)
    )
    assert _autotune_ray._ClusterCapacity(True, 2)() == {"gpu": 4}
    assert _autotune_ray._ClusterCapacity(True, 4)() == {"gpu": 6}
    assert _autotune_ray._ClusterCapacity(False, 2)() == {"cpu": 6}
    del resources["GPU"]
    assert _autotune_ray._ClusterCapacity(True, 2)() == {"cpu": 6}


def test_watchdog_times_out_only_without_running_trials():
    def trials(*statuses):
        return [SimpleNamespace(status=status) for status in statuses]

    watchdog = _autotune_ray._Watchdog(timeout=0.2, max_evals=2)
    watchdog.on_step_begin(0, trials("RUNNING", "PENDING"))
    time.sleep(0.3)
    watchdog.on_step_begin(1, trials("RUNNING", "PENDING"))
    watchdog.on_step_begin(2, trials("TERMINATED"))
    assert not watchdog.stop_all()
    time.sleep(0.3)
    watchdog.on_step_begin(3, trials("TERMINATED"))
    assert watchdog.stop_all() and not watchdog("trial", {})
    patient = _autotune_ray._Watchdog(timeout=None, max_evals=1)
    time.sleep(0.01)
    patient.on_step_begin(0, trials("PENDING"))
    assert not patient.stop_all()


def test_trial_reports_the_guarded_result_and_its_log(monkeypatch):
    reports = []
    monkeypatch.setattr(_autotune_ray.tune, "report", reports.append)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    seen = {}

    def objective(space):
        seen["devices"] = os.environ["CUDA_VISIBLE_DEVICES"]
        logging.getLogger("scvi.inference.autotune").warning(
            "trained on %s", space["x"]
        )
        return {"loss": space["x"] ** 2}

    _autotune_ray._run_trial(
        {"space": {"x": 3.0}, "kind": "cpu"}, _SafeObjective(objective)
    )
    _autotune_ray._run_trial({"space": {"x": 9.0}, "kind": "cpu"}, _SafeObjective(bowl))
    # CPU trials do not see the GPUs.
    assert seen["devices"] == ""
    first, second = (_autotune_ray._decode(r[_autotune_ray._PAYLOAD]) for r in reports)
    assert reports[0]["loss"] == 9.0 and first["result"]["loss"] == 9.0
    assert any("trained on 3.0" in line for line in first["log"])
    assert np.isnan(reports[1]["loss"]) and second["result"]["status"] == STATUS_FAIL
    assert any("outside the bowl" in line for line in second["log"])


def test_trial_resources_follow_the_worker_kind():
    resources = _autotune_ray._Resources(gpu_share=0.5)
    assert resources({"kind": "gpu"}).bundles == [{"CPU": 1.0, "GPU": 0.5}]
    assert resources({"kind": "cpu"}).bundles == [{"CPU": 1.0}]


class _FakeRay:
    """Records ray.init / ray.shutdown calls and the CUDA devices seen by ray.init."""

    def __init__(self, initialized=False):
        self.initialized = initialized
        self.calls = []

    def is_initialized(self):
        return self.initialized

    def init(self, **kwargs):
        self.calls.append(("init", kwargs, os.environ.get("CUDA_VISIBLE_DEVICES")))

    def shutdown(self):
        self.calls.append(("shutdown",))


def test_local_cluster_is_sized_and_shut_down_on_ctrl_c(monkeypatch):
    fake = _FakeRay()
    monkeypatch.setattr(_autotune_ray, "ray", fake)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    with pytest.raises(KeyboardInterrupt):
        with _autotune_ray._ray_cluster(None, 3, [1, 3], 2, False) as capacity:
            assert capacity() == {"gpu": 4, "cpu": 3}
            raise KeyboardInterrupt
    (_, kwargs, devices), shutdown = fake.calls
    assert kwargs["num_cpus"] == 7 and kwargs["num_gpus"] == 2 and devices == "1,3"
    assert shutdown == ("shutdown",)
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0,1,2,3"


def test_existing_clusters_are_used_and_not_shut_down(monkeypatch):
    fake = _FakeRay()
    monkeypatch.setattr(_autotune_ray, "ray", fake)
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    with _autotune_ray._ray_cluster(None, 3, [], 1, False) as capacity:
        assert isinstance(capacity, _autotune_ray._ClusterCapacity)
        assert not capacity.use_gpus
    assert fake.calls[0][1]["address"] == "10.0.0.1:6379"
    assert "num_cpus" not in fake.calls[0][1]
    # Only this process's connection is closed.
    assert fake.calls[1:] == [("shutdown",)]
    monkeypatch.delenv("RAY_ADDRESS")
    fake.calls.clear()
    with _autotune_ray._ray_cluster(None, None, None, 1, True) as capacity:
        assert capacity.use_gpus
    assert fake.calls[0][1]["address"] == "auto"
    fake.calls.clear()
    with _autotune_ray._ray_cluster("10.0.0.3:6379", None, None, 1, True):
        pass
    assert fake.calls[0][1]["address"] == "10.0.0.3:6379"
    connected = _FakeRay(initialized=True)
    monkeypatch.setattr(_autotune_ray, "ray", connected)
    with _autotune_ray._ray_cluster("10.0.0.2:6379", 1, None, 1, False):
        pass
    assert connected.calls == []


def test_local_cluster_needs_a_worker(monkeypatch):
    monkeypatch.setattr(_autotune_ray, "ray", _FakeRay())
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with pytest.raises(ValueError, match="No worker"):
        with _autotune_ray._ray_cluster(None, 0, [], 1, False):
            pass
    assert _autotune_ray._local_slots(None, [], 1)["slots"]["cpu"] == max(
        os.cpu_count() - 1, 1
    )
    assert _autotune_ray._local_slots(None, [0], 3)["slots"] == {"gpu": 3, "cpu": 0}


# The searches below need the order of this file: the first starts its own cluster, the
# others share the module's ``cluster``.


def test_default_objective_on_a_local_cluster(tmp_path, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert not ray.is_initialized(), "run this test before those using `cluster`"
    np.random.seed(1)
    dataset = SyntheticDataset(batch_size=30, nb_genes=15, n_batches=1)
    space = {
        "model_tunable_kwargs": {"n_latent": hp.choice("n_latent", [2, 3])},
        "train_func_tunable_kwargs": {"lr": hp.choice("lr", [1e-2, 1e7])},
    }
    best, trials = auto_tune_scvi_model(
        "ray",
        dataset,
        space=space,
        max_evals=4,
        n_cpu_workers=2,
        gpu_ids=[],
        trainer_specific_kwargs={"use_cuda": False},
        train_func_specific_kwargs={"n_epochs": 2},
        metric_kwargs={"n_mc_samples": 20},
        save_path=str(tmp_path),
        seed=2,
    )
    # The cluster started for the search is gone.
    assert not ray.is_initialized()
    assert len(trials.trials) == 4
    results = trials.results
    diverged = [
        r for r in results if r["space"]["train_func_tunable_kwargs"]["lr"] == 1e7
    ]
    succeeded = [r for r in results if r["status"] == STATUS_OK]
    assert diverged and all("FloatingPointError" in r["error"] for r in diverged)
    assert succeeded and len(diverged) + len(succeeded) == 4
    for result in succeeded:
        # Scored in a Ray worker: -log p(x) is below the best negative test ELBO.
        assert result["worker_name"].split(":")[1] != str(os.getpid())
        assert result["loss"] < result["early_stopping_loss"]
        assert len(result["history"]["elbo_test_set"]) == 2 + 2
    best_space = trials.best_trial["result"]["space"]
    assert isinstance(best, UnsupervisedTrainer)
    assert best.model.n_latent == best_space["model_tunable_kwargs"]["n_latent"]
    assert len(best.train_set.indices) == dataset.nb_cells
    with open(tmp_path / "trials_ray", "rb") as file:
        assert pickle.load(file).losses() == trials.losses()
    assert (tmp_path / "best_model_ray").exists()
    assert (tmp_path / "ray_results" / "ray").is_dir()
    log = (tmp_path / "scvi_autotune_logfile.txt").read_text()
    assert "Starting a local Ray cluster: 2 CPU workers" in log
    assert "Log of trial" in log and "Parameters: model" in log


def test_custom_objective_finds_the_optimum_despite_failures(cluster, tmp_path):
    def objective(space, is_best_training=False):
        x = space["x"]
        if is_best_training:
            return {"trained_at": x, "pid": os.getpid()}
        if x == 5:
            raise RuntimeError("x=5 is out of range")
        if x == 0:
            return float("nan")
        return (x - 3) ** 2

    best, trials = auto_tune_scvi_model(
        "custom",
        custom_objective_hyperopt=objective,
        space={"x": hp.choice("x", [0, 1, 2, 3, 4, 5])},
        max_evals=12,
        gpu_ids=[],
        save_path=str(tmp_path),
        seed=0,
    )
    assert ray.is_initialized()
    xs = np.array(
        [[0, 1, 2, 3, 4, 5][t["misc"]["vals"]["x"][0]] for t in trials.trials]
    )
    statuses = np.array(trials.statuses())
    assert len(xs) == 12
    np.testing.assert_array_equal(statuses == STATUS_FAIL, (xs == 0) | (xs == 5))
    # Both kinds of failure occurred, and trials proposed after them still ran.
    first_failure = min(np.flatnonzero(xs == 0)[0], np.flatnonzero(xs == 5)[0])
    assert (xs == 0).any() and (xs == 5).any()
    assert (statuses[first_failure + 1 :] == STATUS_OK).any()
    raised = [r for r, x in zip(trials.results, xs) if x == 5]
    assert all("RuntimeError: x=5 is out of range" in r["error"] for r in raised)
    assert all("nan" in r["error"] for r, x in zip(trials.results, xs) if x == 0)
    assert all(
        r["worker_name"].split(":")[1] != str(os.getpid()) for r in trials.results
    )
    # The known optimum x = 3 was found and retrained here.
    assert trials.best_trial["result"]["loss"] == 0.0
    assert best == {"trained_at": 3, "pid": os.getpid()}


def test_fmin_timer_ends_the_search(blocked_cluster, tmp_path):
    start = time.monotonic()
    trials = auto_tune_scvi_model(
        "timer",
        custom_objective_hyperopt=bowl,
        space={"x": hp.uniform("x", -2.0, 2.0)},
        max_evals=50,
        train_best=False,
        fmin_timer=3,
        gpu_ids=[],
        save_path=str(tmp_path),
    )
    assert time.monotonic() - start < 30
    # The trials waiting for a worker when time ran out are recorded as failed.
    assert 1 <= len(trials.trials) < 50
    assert set(trials.statuses()) == {STATUS_FAIL}
    assert all("did not finish" in r["error"] for r in trials.results)


def test_stalled_search_raises_fmin_timeout(blocked_cluster, tmp_path):
    with pytest.raises(FminTimeoutError, match="No trial could run for 3"):
        auto_tune_scvi_model(
            "stalled",
            custom_objective_hyperopt=bowl,
            space={"x": hp.uniform("x", -2.0, 2.0)},
            max_evals=2,
            train_best=False,
            fmin_timeout=3,
            gpu_ids=[],
            save_path=str(tmp_path),
        )
    # A cluster this process was already connected to stays up.
    assert ray.is_initialized()
