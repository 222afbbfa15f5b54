"""The generic training loop shared by every model, with metric tracking and early stopping."""

import copy
import logging
import math
import numbers
import sys
import time
from abc import abstractmethod
from collections import OrderedDict, defaultdict
from itertools import cycle
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Optional,
    Tuple,
    Type,
    Union,
)

import numpy as np
import torch
from torch.utils.data.sampler import SubsetRandomSampler
from tqdm import trange

from scvi._settings import settings
from scvi.dataset.dataset import GeneExpressionDataset
from scvi.inference.posterior import Posterior

logger = logging.getLogger(__name__)

Size = Optional[Union[int, float]]


def _split_sizes(n: int, train_size: Size, test_size: Size) -> Tuple[int, int]:
    """Numbers of training and test cells, with scikit-learn's ``train_test_split`` rules.

    Floats are fractions in (0, 1) (train rounded down, test rounded up), ints are
    counts; a missing size is the complement of the other. ``train_size=1.0`` alone
    means "all cells for training".
    """

    def check(name: str, size: Size) -> None:
        if size is None:
            return
        if isinstance(size, numbers.Integral):
            if not 0 < size < n:
                raise ValueError(
                    f"{name}={size} should be between 1 and {n - 1} cells."
                )
        elif isinstance(size, numbers.Real):
            if not 0 < size < 1:
                raise ValueError(f"{name}={size} should be a fraction in (0, 1).")
        else:
            raise TypeError(f"{name} should be an int, a float or None, not {size!r}.")

    if train_size is None and test_size is None:
        raise ValueError("train_size and test_size cannot both be None.")
    if train_size == 1.0 and test_size in (None, 0, 0.0):
        return n, 0
    try:
        check("train_size", train_size)
        check("test_size", test_size)
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"Choice of train_size={train_size} and test_size={test_size} not understood "
            f"for {n} cells: {error}"
        ) from error
    n_test = None
    if isinstance(test_size, numbers.Integral):
        n_test = int(test_size)
    elif test_size is not None:
        n_test = math.ceil(test_size * n)
    n_train = None
    if isinstance(train_size, numbers.Integral):
        n_train = int(train_size)
    elif train_size is not None:
        n_train = math.floor(train_size * n)
    if n_train is None:
        n_train = n - n_test
    if n_test is None:
        n_test = n - n_train
    if n_train + n_test > n or n_train == 0:
        raise ValueError(
            f"Choice of train_size={train_size} and test_size={test_size} not understood "
            f"for {n} cells: {n_train} training and {n_test} test cells."
        )
    return n_train, n_test


class Trainer:
    """Abstract trainer: optimises a model on its posteriors and monitors metrics.

    Subclasses define :meth:`loss` and :attr:`posteriors_loop` (the names of the
    posteriors whose minibatches are zipped into each ``loss`` call).

    Parameters
    ----------
    model
        A model instance, e.g. :class:`~scvi.models.VAE`.
    gene_dataset
        The dataset to train on.
    use_cuda
        Train on the GPU when one is available.
    metrics_to_monitor
        Names of posterior metrics to record in :attr:`history` (default: the
        class's ``default_metrics_to_monitor``).
    benchmark
        Skip all metric computation during training.
    frequency
        Record the metrics every ``frequency`` epochs (never when None).
    weight_decay
        L2 penalty of the Adam optimizer.
    early_stopping_kwargs
        Arguments of :class:`EarlyStopping` (``early_stopping_metric``,
        ``save_best_state_metric``, ``on``, ``patience``, ``threshold``,
        ``reduce_lr_on_plateau``, ``lr_patience``, ``lr_factor``...).
    data_loader_kwargs
        Arguments of the minibatch loaders (default ``batch_size=128``).
    show_progbar
        Show a progress bar during training.
    seed
        Seed of the random train/test/validation split.
    """

    default_metrics_to_monitor: List[str] = []

    def __init__(
        self,
        model: torch.nn.Module,
        gene_dataset: GeneExpressionDataset,
        use_cuda: bool = True,
        metrics_to_monitor: Optional[Iterable[str]] = None,
        benchmark: bool = False,
        frequency: Optional[int] = None,
        weight_decay: float = 1e-6,
        early_stopping_kwargs: Optional[Dict[str, Any]] = None,
        data_loader_kwargs: Optional[Dict[str, Any]] = None,
        show_progbar: bool = True,
        seed: int = 0,
    ):
        self.model = model
        self.gene_dataset = gene_dataset
        self._posteriors: OrderedDict[str, Posterior] = OrderedDict()
        self.seed = seed

        self.data_loader_kwargs = {"batch_size": 128, "pin_memory": use_cuda}
        self.data_loader_kwargs.update(data_loader_kwargs or {})

        self.weight_decay = weight_decay
        self.benchmark = benchmark
        self.epoch = -1
        self.n_epochs = 0
        self.training_time = 0.0
        self.compute_metrics_time = 0.0

        self.metrics_to_monitor = set(
            self.default_metrics_to_monitor
            if metrics_to_monitor is None
            else metrics_to_monitor
        )
        self.early_stopping = EarlyStopping(**(early_stopping_kwargs or {}))
        if self.early_stopping.early_stopping_metric:
            self.metrics_to_monitor.add(self.early_stopping.early_stopping_metric)

        self.use_cuda = use_cuda and torch.cuda.is_available()
        if self.use_cuda:
            self.model.cuda()
        self.data_loader_kwargs["pin_memory"] = (
            self.data_loader_kwargs["pin_memory"] and self.use_cuda
        )

        self.frequency = frequency if not benchmark else None
        self.history: Dict[str, List[float]] = defaultdict(list)
        self.best_state_dict = copy.deepcopy(self.model.state_dict())
        self.best_epoch = self.epoch
        self.show_progbar = show_progbar

    @torch.no_grad()
    def compute_metrics(self) -> None:
        """Record the monitored metrics of every posterior in :attr:`history`, when due."""
        begin = time.time()
        epoch = self.epoch + 1
        if self.frequency and (
            epoch == 0 or epoch == self.n_epochs or epoch % self.frequency == 0
        ):
            self.model.eval()
            logger.debug("EPOCH [%d/%d]", epoch, self.n_epochs)
            for name, posterior in self._posteriors.items():
                if posterior.nb_cells < 5:
                    logger.debug("%s is too small to track metrics (<5 cells)", name)
                    continue
                metrics = [
                    m for m in posterior.to_monitor if m not in self.metrics_to_monitor
                ]
                for metric in metrics + sorted(self.metrics_to_monitor):
                    self.history[f"{metric}_{name}"].append(
                        getattr(posterior, metric)()
                    )
            self.model.train()
        self.compute_metrics_time += time.time() - begin

    def train(
        self,
        n_epochs: int = 20,
        lr: float = 1e-3,
        eps: float = 0.01,
        params: Optional[Iterable[torch.nn.Parameter]] = None,
    ) -> None:
        """Train with Adam for ``n_epochs`` epochs.

        Parameters
        ----------
        n_epochs
            Number of passes over the training data.
        lr
            Learning rate.
        eps
            Adam's ``eps``.
        params
            Parameters to optimise (default: every parameter that requires a gradient).

        Raises
        ------
        FloatingPointError
            When the loss becomes NaN or infinite; the model is restored to its weights at
            the start of the failing epoch.
        """
        self.model.train()
        if params is None:
            params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = optimizer = torch.optim.Adam(
            params,
            lr=lr,
            eps=eps,
            weight_decay=self.weight_decay,
            fused=settings.fast_training or None,
        )

        def step(tensors_list: Tuple[List[torch.Tensor], ...]) -> torch.Tensor:
            loss = self.loss(*tensors_list)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return loss

        self._fit(
            n_epochs,
            step,
            "a learning rate too high (try lr=1e-4), data that are not raw counts "
            "(normalised, negative or huge values), or cells with no counts.",
        )

    def _fit(
        self,
        n_epochs: int,
        step: Callable[[Tuple[List[torch.Tensor], ...]], torch.Tensor],
        likely_causes: str,
    ) -> None:
        """Run the epochs of a training: ``step`` trains on each zip of minibatches.

        ``step`` returns the loss it optimised; a non-finite loss in an epoch restores the
        model's weights from the start of that epoch and raises ``FloatingPointError``
        naming ``likely_causes``. Metrics, early stopping and the best state are handled
        here.
        """
        begin = time.time()
        self.compute_metrics_time = 0.0
        self.n_epochs = n_epochs
        self.compute_metrics()
        with (
            torch.set_grad_enabled(True),
            trange(
                n_epochs,
                desc="training",
                file=sys.stdout,
                disable=not self.show_progbar,
            ) as pbar,
        ):
            for self.epoch in pbar:
                self.on_epoch_begin()
                epoch_start_state = copy.deepcopy(self.model.state_dict())
                non_finite = None
                for tensors_list in self.data_loaders_loop():
                    if tensors_list[0][0].shape[0] < 3:
                        continue
                    bad = ~torch.isfinite(step(tensors_list).detach())
                    non_finite = bad if non_finite is None else non_finite | bad
                if non_finite is not None and bool(non_finite):
                    self.model.load_state_dict(epoch_start_state)
                    self.model.eval()
                    raise FloatingPointError(
                        f"The training loss became NaN or infinite in epoch {self.epoch}; the "
                        "model was restored to its weights at the start of that epoch. "
                        f"Likely causes: {likely_causes}"
                    )
                if not self.on_epoch_end():
                    break

        if self.early_stopping.save_best_state_metric is not None:
            self.model.load_state_dict(self.best_state_dict)
            self.compute_metrics()
        self.model.eval()
        self.training_time += (time.time() - begin) - self.compute_metrics_time
        if self.frequency:
            logger.debug(
                "Training time: %i s. / %i epochs",
                int(self.training_time),
                self.n_epochs,
            )

    def on_epoch_begin(self) -> None:
        """Hook called at the start of every epoch."""

    def on_epoch_end(self) -> bool:
        """Record metrics, update the best state and early stopping; return False to stop."""
        self.compute_metrics()
        stopping = self.early_stopping
        on = stopping.on
        if stopping.save_best_state_metric is not None and on is not None:
            key = f"{stopping.save_best_state_metric}_{on}"
            if self.history[key] and stopping.update_state(self.history[key][-1]):
                self.best_state_dict = copy.deepcopy(self.model.state_dict())
                self.best_epoch = self.epoch
        if stopping.early_stopping_metric is not None and on is not None:
            key = f"{stopping.early_stopping_metric}_{on}"
            if not self.history[key]:
                raise ValueError(
                    f"Early stopping monitors {key!r}, which is never computed: set "
                    "frequency (e.g. frequency=1) so that metrics are recorded."
                )
            continue_training, reduce_lr = stopping.update(self.history[key][-1])
            if reduce_lr:
                logger.info("Reducing LR.")
                for param_group in self.optimizer.param_groups:
                    param_group["lr"] *= stopping.lr_factor
            return continue_training
        return True

    @property
    @abstractmethod
    def posteriors_loop(self) -> List[str]:
        """Names of the posteriors whose minibatches each training step receives."""

    @abstractmethod
    def loss(self, *tensors_list: List[torch.Tensor]) -> torch.Tensor:
        """The objective of one training step, given one minibatch per posterior of the loop."""

    def data_loaders_loop(self) -> Iterator[Tuple[List[torch.Tensor], ...]]:
        """Zip the first posterior of :attr:`posteriors_loop` with the others, cycled."""
        loaders = [self._posteriors[name] for name in self.posteriors_loop]
        return zip(loaders[0], *[cycle(loader) for loader in loaders[1:]])

    def register_posterior(self, name: str, value: Posterior) -> None:
        """Register ``value`` under ``name`` (surrounding underscores stripped)."""
        self._posteriors[name.strip("_")] = value

    def corrupt_posteriors(
        self,
        rate: float = 0.1,
        corruption: str = "uniform",
        update_corruption: bool = True,
    ) -> None:
        """Corrupt the dataset (once) and switch every posterior to the corrupted counts."""
        if (
            update_corruption
            and getattr(self.gene_dataset, "corrupted_X", None) is None
        ):
            self.gene_dataset.corrupt(rate=rate, corruption=corruption)
        for name, posterior in self._posteriors.items():
            self.register_posterior(name, posterior.corrupted())

    def uncorrupt_posteriors(self) -> None:
        """Switch every posterior back to the original counts."""
        for name, posterior in self._posteriors.items():
            self.register_posterior(name, posterior.uncorrupted())

    def __getattr__(self, name: str) -> Any:
        posteriors = self.__dict__.get("_posteriors")
        if posteriors is not None and name.strip("_") in posteriors:
            return posteriors[name.strip("_")]
        raise AttributeError(
            f"{type(self).__name__!r} object has no attribute {name!r}"
        )

    def __delattr__(self, name: str) -> None:
        if name.strip("_") in self._posteriors:
            del self._posteriors[name.strip("_")]
        else:
            object.__delattr__(self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, Posterior):
            self.register_posterior(name, value)
        else:
            object.__setattr__(self, name, value)

    def train_test_validation(
        self,
        model: Optional[torch.nn.Module] = None,
        gene_dataset: Optional[GeneExpressionDataset] = None,
        train_size: Size = 0.1,
        test_size: Size = None,
        type_class: Type[Posterior] = Posterior,
    ) -> Tuple[Posterior, Posterior, Posterior]:
        """Split the cells at random into training, test and validation posteriors.

        The validation set holds the cells left when ``train_size + test_size`` is less
        than the whole dataset. The split depends only on :attr:`seed`.
        """
        model = self.model if model is None else model
        gene_dataset = self.gene_dataset if gene_dataset is None else gene_dataset
        n = len(gene_dataset)
        n_train, n_test = _split_sizes(n, train_size, test_size)
        permutation = np.random.RandomState(seed=self.seed).permutation(n)
        splits = (
            permutation[n_test : n_test + n_train],
            permutation[:n_test],
            permutation[n_test + n_train :],
        )
        return tuple(
            self.create_posterior(
                model, gene_dataset, indices=indices, type_class=type_class
            )
            for indices in splits
        )

    def create_posterior(
        self,
        model: Optional[torch.nn.Module] = None,
        gene_dataset: Optional[GeneExpressionDataset] = None,
        shuffle: bool = False,
        indices: Optional[np.ndarray] = None,
        type_class: Type[Posterior] = Posterior,
    ) -> Posterior:
        """A posterior of ``type_class`` over ``indices`` with this trainer's loader settings."""
        return type_class(
            self.model if model is None else model,
            self.gene_dataset if gene_dataset is None else gene_dataset,
            shuffle=shuffle,
            indices=indices,
            use_cuda=self.use_cuda,
            data_loader_kwargs=self.data_loader_kwargs,
        )


class SequentialSubsetSampler(SubsetRandomSampler):
    """Yield the given indices in increasing order."""

    def __init__(self, indices: np.ndarray):
        self.indices = np.sort(indices)

    def __iter__(self):
        return iter(self.indices)


class EarlyStopping:
    """Early stopping and learning-rate reduction on a plateau of a monitored metric.

    Parameters
    ----------
    early_stopping_metric
        Posterior metric to monitor (a method of ``posterior_class`` with a ``mode``).
    save_best_state_metric
        Metric whose best value's weights are restored at the end of training.
    on
        Name of the posterior the metrics are read on.
    patience
        Number of epochs without an improvement of more than ``threshold`` before stopping.
    threshold
        Minimal improvement that resets the patience counter.
    benchmark
        Never stop.
    reduce_lr_on_plateau
        Multiply the learning rate by ``lr_factor`` after ``lr_patience`` epochs without improvement.
    lr_patience
        Patience of the learning-rate reduction.
    lr_factor
        Learning-rate reduction factor.
    posterior_class
        Class that defines the metrics.
    """

    def __init__(
        self,
        early_stopping_metric: Optional[str] = None,
        save_best_state_metric: Optional[str] = None,
        on: str = "test_set",
        patience: int = 15,
        threshold: int = 3,
        benchmark: bool = False,
        reduce_lr_on_plateau: bool = False,
        lr_patience: int = 10,
        lr_factor: float = 0.5,
        posterior_class: Type[Posterior] = Posterior,
    ):
        self.benchmark = benchmark
        self.patience = patience
        self.threshold = threshold
        self.epoch = 0
        self.wait = 0
        self.wait_lr = 0
        self.mode = self._mode(posterior_class, early_stopping_metric)
        self.mode_save_state = self._mode(posterior_class, save_best_state_metric)
        sign = -1 if self.mode == "max" else 1
        self.current_performance = sign * np.inf
        self.best_performance = sign * np.inf
        self.best_performance_state = (
            -1 if self.mode_save_state == "max" else 1
        ) * np.inf
        self.early_stopping_metric = early_stopping_metric
        self.save_best_state_metric = save_best_state_metric
        self.on = on
        self.reduce_lr_on_plateau = reduce_lr_on_plateau
        self.lr_patience = lr_patience
        self.lr_factor = lr_factor

    @staticmethod
    def _mode(posterior_class: Type[Posterior], metric: Optional[str]) -> Optional[str]:
        if metric is None:
            return None
        mode = getattr(getattr(posterior_class, metric, None), "mode", None)
        if mode not in ("min", "max"):
            valid = sorted(
                name
                for name in dir(posterior_class)
                if getattr(getattr(posterior_class, name, None), "mode", None)
                in ("min", "max")
            )
            raise ValueError(
                f"{metric!r} cannot be monitored on {posterior_class.__name__}; use one of {valid}."
            )
        return mode

    def update(self, scalar: float) -> Tuple[bool, bool]:
        """Record a new metric value; return ``(continue_training, reduce_lr)``."""
        self.epoch += 1
        if self.benchmark:
            return True, False
        if self.wait >= self.patience:
            logger.info(
                "Stopping early: no improvement of more than %s nats in %s epochs. If the "
                "criterion is too strict, pass other early_stopping_kwargs to the trainer.",
                self.threshold,
                self.patience,
            )
            return False, False
        reduce_lr = False
        if self.reduce_lr_on_plateau and self.wait_lr >= self.lr_patience:
            reduce_lr = True
            self.wait_lr = 0
        self.current_performance = scalar
        if self.mode == "max":
            improvement = scalar - self.best_performance
        else:
            improvement = self.best_performance - scalar
        if improvement > 0:
            self.best_performance = scalar
        if improvement < self.threshold:
            self.wait += 1
            self.wait_lr += 1
        else:
            self.wait = 0
            self.wait_lr = 0
        return True, reduce_lr

    def update_state(self, scalar: float) -> bool:
        """Return whether ``scalar`` improves on the best value of the state metric."""
        if self.mode_save_state == "max":
            improved = scalar - self.best_performance_state > 0
        else:
            improved = self.best_performance_state - scalar > 0
        if improved:
            self.best_performance_state = scalar
        return improved
