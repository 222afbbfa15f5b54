"""In-process hyperparameter search (``parallel=False``) of scvi.inference.autotune."""

import importlib
import logging
import math
import pickle
import sys
import time

import numpy as np
import pytest
import torch
from hyperopt import STATUS_FAIL, STATUS_OK, Trials, hp

import scvi.inference
from scvi.dataset import SyntheticDataset
from scvi.dataset.dataset import DownloadableDataset
from scvi.inference import UnsupervisedTrainer
from scvi.inference.autotune import auto_tune_scvi_model

OPTIMUM = 1.3


def quadratic(space, is_best_training=False, offset=0.0):
    """Known optimum x = OPTIMUM; raises for x > 4, returns NaN for x < 0.3."""
    x = space["x"]
    if is_best_training:
        return {"trained_at": x}
    if x > 4.0:
        raise RuntimeError(f"x={x} is out of range")
    if x < 0.3:
        return float("nan")
    return {"loss": (x - OPTIMUM) ** 2 + offset, "status": STATUS_OK}


QUADRATIC_SPACE = {"x": hp.uniform("x", 0.0, 5.0)}


@pytest.fixture
def tiny_dataset():
    np.random.seed(1)
    return SyntheticDataset(batch_size=30, nb_genes=15, n_batches=2)


def test_custom_objective_finds_optimum_and_records_failures(tmp_path):
    best, trials = auto_tune_scvi_model(
        "quad",
        custom_objective_hyperopt=quadratic,
        objective_kwargs={"offset": 0.5},
        space=QUADRATIC_SPACE,
        max_evals=60,
        parallel=False,
        save_path=str(tmp_path),
        seed=0,
    )
    assert isinstance(trials, Trials) and len(trials.trials) == 60
    xs = np.array([t["misc"]["vals"]["x"][0] for t in trials.trials])
    statuses = np.array(trials.statuses())
    # Every raising or NaN trial is a recorded failure, and the search went on after it.
    np.testing.assert_array_equal(statuses == STATUS_FAIL, (xs > 4.0) | (xs < 0.3))
    assert (statuses == STATUS_FAIL).sum() >= 2
    raised = [r for r, x in zip(trials.results, xs) if x > 4.0]
    assert raised and all("RuntimeError: x=" in r["error"] for r in raised)
    assert all("Traceback" in r["traceback"] for r in raised)
    nans = [r for r, x in zip(trials.results, xs) if x < 0.3]
    assert nans and all("nan" in r["error"] for r in nans)
    # The best trial is the minimum of the losses, close to the known optimum.
    best_x = trials.best_trial["misc"]["vals"]["x"][0]
    assert abs(best_x - OPTIMUM) < 0.05
    ok = statuses == STATUS_OK
    assert trials.best_trial["result"]["loss"] == pytest.approx(
        np.min((xs[ok] - OPTIMUM) ** 2) + 0.5
    )
    # The best point is retrained through the objective (objective_kwargs kept).
    assert best == {"trained_at": best_x}
    with open(tmp_path / "trials_quad", "rb") as file:
        assert pickle.load(file).losses() == trials.losses()
    with open(tmp_path / "best_trainer_quad", "rb") as file:
        assert pickle.load(file) == best
    assert (tmp_path / "scvi_autotune_logfile.txt").read_text().count(
        "Trial failed"
    ) >= 2


def test_seed_makes_the_search_reproducible(tmp_path):
    def run(seed):
        return auto_tune_scvi_model(
            "repro",
            custom_objective_hyperopt=quadratic,
            space=QUADRATIC_SPACE,
            max_evals=25,
            parallel=False,
            train_best=False,
            pickle_result=False,
            save_path=str(tmp_path),
            seed=seed,
        )

    first, second, other = run(7), run(7), run(8)
    assert first.vals == second.vals and first.losses() == second.losses()
    assert first.vals != other.vals
    # Without a seed, numpy's global random state seeds the sampler.
    np.random.seed(3)
    third = run(None)
    np.random.seed(3)
    assert run(None).vals == third.vals


def test_fmin_timer_stops_the_search(tmp_path):
    def slow(space):
        time.sleep(0.2)
        return space["x"] ** 2

    start = time.monotonic()
    trials = auto_tune_scvi_model(
        "slow",
        custom_objective_hyperopt=slow,
        space=QUADRATIC_SPACE,
        max_evals=1000,
        fmin_timer=1.0,
        parallel=False,
        train_best=False,
        pickle_result=False,
        save_path=str(tmp_path),
        seed=0,
    )
    assert time.monotonic() - start < 10.0
    assert 1 <= len(trials.trials) < 30


def test_default_objective_trains_scores_and_retrains_best(tmp_path, tiny_dataset):
    space = {
        "model_tunable_kwargs": {"n_latent": hp.choice("n_latent", [2, 3])},
        "train_func_tunable_kwargs": {"lr": hp.choice("lr", [1e-2, 1e7])},
    }
    best, trials = auto_tune_scvi_model(
        "vae",
        tiny_dataset,
        space=space,
        max_evals=4,
        parallel=False,
        use_batches=True,
        trainer_specific_kwargs={"use_cuda": False},
        train_func_specific_kwargs={"n_epochs": 3},
        metric_kwargs={"n_mc_samples": 50},
        save_path=str(tmp_path),
        seed=2,
    )
    results = trials.results
    diverged = [
        r for r in results if r["space"]["train_func_tunable_kwargs"]["lr"] == 1e7
    ]
    succeeded = [r for r in results if r["status"] == STATUS_OK]
    assert diverged and all(r["status"] == STATUS_FAIL for r in diverged)
    assert all("FloatingPointError" in r["error"] for r in diverged)
    assert succeeded and len(diverged) + len(succeeded) == 4
    for result in succeeded:
        # Early stopping on the test ELBO (0.5's default) was monitored every epoch.
        assert result["early_stopping_loss_is_best"]
        test_elbos = result["history"]["elbo_test_set"]
        assert len(test_elbos) == 3 + 2
        assert result["early_stopping_loss"] == pytest.approx(min(test_elbos[1:4]))
        assert result["best_epoch"] == int(np.argmin(test_elbos[1:4]))
        assert (
            result["space"]["train_func_tunable_kwargs"]["n_epochs"]
            == result["best_epoch"] + 1
        )
        # The importance-sampled -log p(x) is below the negative ELBO of the same model.
        assert math.isfinite(result["loss"])
        assert result["loss"] < result["early_stopping_loss"]
    best_space = trials.best_trial["result"]["space"]
    assert isinstance(best, UnsupervisedTrainer)
    assert best.model.n_latent == best_space["model_tunable_kwargs"]["n_latent"]
    assert best.model.n_batch == 2
    assert len(best.train_set.indices) == tiny_dataset.nb_cells
    assert best.epoch + 1 == best_space["train_func_tunable_kwargs"]["n_epochs"]
    assert (
        best.optimizer.param_groups[0]["lr"]
        == best_space["train_func_tunable_kwargs"]["lr"]
    )
    state = torch.load(tmp_path / "best_model_vae")
    for name, tensor in best.model.state_dict().items():
        torch.testing.assert_close(state[name], tensor)
    with open(tmp_path / "best_trainer_vae", "rb") as file:
        assert len(pickle.load(file).train_set.indices) == tiny_dataset.nb_cells


def test_metric_and_posterior_names_are_checked(tmp_path, tiny_dataset):
    trials = auto_tune_scvi_model(
        "names",
        tiny_dataset,
        space={"model_tunable_kwargs": {"n_latent": hp.choice("n_latent", [2])}},
        max_evals=1,
        parallel=False,
        train_best=False,
        metric_name="no_such_metric",
        trainer_specific_kwargs={"use_cuda": False},
        train_func_specific_kwargs={"n_epochs": 1},
        save_path=str(tmp_path),
    )
    (result,) = trials.results
    assert result["status"] == STATUS_FAIL
    assert "test_set.no_such_metric()" in result["error"]


def test_all_failed_trials_give_a_clear_error(tmp_path):
    def broken(space, is_best_training=False):
        raise ValueError("broken objective")

    with pytest.raises(RuntimeError, match="All 3 trials failed.*broken objective"):
        auto_tune_scvi_model(
            "broken",
            custom_objective_hyperopt=broken,
            space=QUADRATIC_SPACE,
            max_evals=3,
            parallel=False,
            save_path=str(tmp_path),
        )
    trials = auto_tune_scvi_model(
        "broken",
        custom_objective_hyperopt=broken,
        space=QUADRATIC_SPACE,
        max_evals=3,
        parallel=False,
        train_best=False,
        save_path=str(tmp_path),
    )
    assert trials.statuses() == [STATUS_FAIL] * 3
    # The search's log handlers are removed afterwards.
    assert not any(
        getattr(h, "baseFilename", "").startswith(str(tmp_path))
        for h in logging.getLogger("scvi").handlers
        + logging.getLogger("hyperopt").handlers
    )


class _InMemoryDownloadable(DownloadableDataset):
    """A DownloadableDataset without URLs whose populate() fills it from memory."""

    def __init__(self, counts, delayed_populating=True):
        self.counts = counts
        super().__init__(
            urls=None, save_path="unused", delayed_populating=delayed_populating
        )

    def populate(self):
        self.populate_from_data(self.counts)


def test_delayed_populating(tmp_path):
    counts = np.random.RandomState(0).negative_binomial(5, 0.3, size=(40, 12))
    dataset = _InMemoryDownloadable(counts)
    assert dataset.nb_cells == 0
    best, trials = auto_tune_scvi_model(
        "delayed",
        dataset,
        delayed_populating=True,
        space={"model_tunable_kwargs": {"n_latent": hp.choice("n_latent", [2])}},
        max_evals=1,
        parallel=False,
        trainer_specific_kwargs={"use_cuda": False},
        train_func_specific_kwargs={"n_epochs": 1},
        metric_kwargs={"n_mc_samples": 5},
        pickle_result=False,
        save_path=str(tmp_path),
    )
    assert trials.statuses() == [STATUS_OK]
    assert len(best.train_set.indices) == 40


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"max_evals": 0}, ValueError, "max_evals"),
        ({"fmin_timer": -1}, ValueError, "fmin_timer"),
        ({"n_workers_per_gpu": 0}, ValueError, "n_workers_per_gpu"),
        ({"n_cpu_workers": -2}, ValueError, "n_cpu_workers"),
        ({"exp_key": ""}, ValueError, "exp_key"),
        ({"max_evals": True}, ValueError, "max_evals"),
        ({"gpu_ids": 0}, ValueError, "gpu_ids"),
        ({"ray_address": 6379}, ValueError, "ray_address"),
        ({"space": [1]}, ValueError, "space must be a dict"),
        ({"gene_dataset": None}, ValueError, "gene_dataset"),
        ({"space": {"model_kwargs": {}}}, ValueError, "Unknown keys"),
        ({"delayed_populating": True}, ValueError, "DownloadableDataset"),
        ({"custom_objective_hyperopt": lambda space: 0.0}, ValueError, "pass space"),
        (
            {"custom_objective_hyperopt": lambda space: 0.0, "space": QUADRATIC_SPACE},
            TypeError,
            "is_best_training",
        ),
    ],
)
def test_bad_arguments(tmp_path, tiny_dataset, kwargs, error, message):
    arguments = {"exp_key": "bad", "gene_dataset": tiny_dataset, "parallel": False}
    arguments.update(save_path=str(tmp_path), **kwargs)
    with pytest.raises(error, match=message):
        auto_tune_scvi_model(**arguments)


def test_mongo_arguments_are_ignored_with_a_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="scvi.inference.autotune"):
        trials = auto_tune_scvi_model(
            "mongo",
            custom_objective_hyperopt=quadratic,
            space=QUADRATIC_SPACE,
            max_evals=2,
            parallel=False,
            train_best=False,
            pickle_result=False,
            mongo_port="27017",
            db_name="other",
            save_path=str(tmp_path),
        )
    assert len(trials.trials) == 2
    assert "mongo_port, db_name ignored" in caplog.text and "Ray" in caplog.text


def test_missing_ray_gives_an_install_hint(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.delitem(sys.modules, "scvi.inference._autotune_ray", raising=False)
    monkeypatch.delattr(scvi.inference, "_autotune_ray", raising=False)
    with pytest.raises(
        ImportError, match=r"pip install 'scvi\[autotune\]'.*parallel=False"
    ):
        auto_tune_scvi_model(
            "noray",
            custom_objective_hyperopt=quadratic,
            space=QUADRATIC_SPACE,
            max_evals=1,
            save_path=str(tmp_path),
        )


def test_missing_hyperopt_gives_an_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "hyperopt", None)
    monkeypatch.delitem(sys.modules, "scvi.inference.autotune")
    with pytest.raises(ImportError, match=r"pip install 'scvi\[autotune\]'"):
        importlib.import_module("scvi.inference.autotune")
