"""Cell-type annotation: semi-supervised training of SCANVI / VAEC and classifier training.

The semi-supervised trainers draw a few labelled cells per cell type, optimise the model's
ELBO on all cells (without their labels) plus a weighted classification loss on the
labelled cells, and can train the classifier alone after every epoch. Posteriors of type
:class:`AnnotationPosterior` report the accuracy of the predicted labels, which can be
monitored and used for early stopping.
"""

import logging
from typing import Any, List, Optional, Sequence, Tuple, Type

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.neighbors import KNeighborsClassifier

from scvi.dataset.dataset import GeneExpressionDataset
from scvi.inference._annotation_metrics import (
    Accuracy,
    compute_accuracy,
    compute_accuracy_classifier,
    compute_accuracy_nn,
    compute_accuracy_rf,
    compute_accuracy_svc,
    compute_accuracy_tuple,
    compute_predictions,
    encode_for_classifier,
)
from scvi.inference._posterior import metric
from scvi.inference.inference import UnsupervisedTrainer
from scvi.inference.posterior import Posterior, unsupervised_clustering_accuracy
from scvi.inference.trainer import Trainer

__all__ = [
    "AnnotationPosterior",
    "ClassifierTrainer",
    "SemiSupervisedTrainer",
    "JointSemiSupervisedTrainer",
    "AlternateSemiSupervisedTrainer",
    "Accuracy",
    "compute_predictions",
    "compute_accuracy",
    "compute_accuracy_tuple",
    "compute_accuracy_classifier",
    "compute_accuracy_nn",
    "compute_accuracy_svc",
    "compute_accuracy_rf",
]

logger = logging.getLogger(__name__)


class AnnotationPosterior(Posterior):
    """A :class:`~scvi.inference.Posterior` that scores label predictions.

    Predictions come from the model's ``classify`` (SCANVI, VAEC) or, when the posterior
    has a ``sampling_model`` attribute (set by :class:`ClassifierTrainer`), from the
    posterior's model used as a classifier on the sampling model's latent space.

    Parameters
    ----------
    *args, **kwargs
        Arguments of :class:`~scvi.inference.Posterior`.
    model_zl
        Classify the latent means of ``z`` and ``l`` concatenated, instead of ``z`` alone.
    """

    def __init__(self, *args: Any, model_zl: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.model_zl = model_zl

    def _predictor(self) -> Tuple[Optional[torch.nn.Module], Optional[torch.nn.Module]]:
        """``(model, classifier)`` as :func:`compute_predictions` takes them."""
        if hasattr(self, "sampling_model"):
            return self.sampling_model, self.model
        return self.model, None

    @metric("max")
    @torch.no_grad()
    def accuracy(self) -> float:
        """Fraction of the cells whose label is predicted correctly."""
        model, classifier = self._predictor()
        acc = compute_accuracy(
            model, self, classifier=classifier, model_zl=self.model_zl
        )
        logger.debug("Acc: %.4f", acc)
        return acc

    @metric("max")
    @torch.no_grad()
    def hierarchical_accuracy(self) -> float:
        """Fraction of the cells whose label *group* (``model.labels_groups``) is right."""
        groups = getattr(self.model, "labels_groups", None)
        if groups is None:
            raise ValueError(
                "hierarchical_accuracy needs a model with labels_groups, e.g. "
                "SCANVI(..., labels_groups=[0, 0, 1], use_labels_groups=True)."
            )
        all_y, all_y_pred = self.compute_predictions()
        groups = np.asarray(groups)
        logger.debug("Acc: %.4f", np.mean(all_y == all_y_pred))
        h_acc = float(np.mean(groups[all_y] == groups[all_y_pred]))
        logger.debug("Hierarchical Acc: %.4f", h_acc)
        return h_acc

    @torch.no_grad()
    def compute_predictions(self, soft: bool = False) -> Tuple[np.ndarray, np.ndarray]:
        """True labels and predicted labels (or class probabilities when ``soft``)."""
        model, classifier = self._predictor()
        return compute_predictions(
            model, self, classifier=classifier, soft=soft, model_zl=self.model_zl
        )

    @metric("max")
    @torch.no_grad()
    def unsupervised_classification_accuracy(self) -> float:
        """Accuracy after the best one-to-one matching of predicted to true labels."""
        all_y, all_y_pred = self.compute_predictions()
        uca = float(unsupervised_clustering_accuracy(all_y, all_y_pred)[0])
        logger.debug("UCA: %.4f", uca)
        return uca

    @torch.no_grad()
    def nn_latentspace(self, posterior: Posterior) -> float:
        """Accuracy on ``posterior``'s cells of a 5-nearest-neighbour classifier of labels
        fitted on this posterior's latent means."""
        data_train, _, labels_train = self.get_latent()
        data_test, _, labels_test = posterior.get_latent()
        knn = KNeighborsClassifier().fit(data_train, labels_train)
        return float(knn.score(data_test, labels_test))


class ClassifierTrainer(Trainer):
    """Train a classifier on counts, or on the latent space of another model.

    Parameters
    ----------
    *args
        ``model`` (e.g. a :class:`~scvi.models.Classifier`) and ``gene_dataset``.
    train_size
        Fraction or number of training cells.
    test_size
        Fraction or number of test cells (default: the rest).
    sampling_model
        Model whose encoder turns counts into the classifier's input (latent mean of
        ``z``); if it has a ``classify`` method (SCANVI, VAEC) that is used instead, and
        only the parameters of ``model`` are trained.
    sampling_zl
        Feed the classifier the latent means of ``z`` and ``l`` concatenated.
    use_cuda
        Train on the GPU when one is available.
    **kwargs
        Arguments of :class:`~scvi.inference.Trainer`.

    Examples
    --------
    >>> vae = VAE(gene_dataset.nb_genes)
    >>> classifier = Classifier(vae.n_latent, n_labels=gene_dataset.n_labels)
    >>> trainer = ClassifierTrainer(classifier, gene_dataset, sampling_model=vae)
    >>> trainer.train(n_epochs=20, lr=1e-3)
    >>> trainer.test_set.accuracy()
    """

    _classifier_posteriors = ("train_set", "test_set", "validation_set")

    def __init__(
        self,
        *args: Any,
        train_size: float = 0.8,
        test_size: Optional[float] = None,
        sampling_model: Optional[torch.nn.Module] = None,
        sampling_zl: bool = False,
        use_cuda: bool = True,
        **kwargs: Any,
    ):
        self.sampling_model = sampling_model
        self.sampling_zl = sampling_zl
        super().__init__(*args, use_cuda=use_cuda, **kwargs)
        self.train_set, self.test_set, self.validation_set = self.train_test_validation(
            self.model,
            self.gene_dataset,
            train_size=train_size,
            test_size=test_size,
            type_class=AnnotationPosterior,
        )
        for posterior in (self.train_set, self.test_set, self.validation_set):
            posterior.to_monitor = ["accuracy"]
            posterior.model_zl = sampling_zl

    @property
    def posteriors_loop(self) -> List[str]:
        """Each step sees one minibatch of the training set."""
        return ["train_set"]

    def __setattr__(self, name: str, value: Any) -> None:
        if (
            isinstance(value, Posterior)
            and name.strip("_") in self._classifier_posteriors
        ):
            value.sampling_model = self.sampling_model
        super().__setattr__(name, value)

    def loss(self, tensors_labelled: Sequence[torch.Tensor]) -> torch.Tensor:
        """Cross-entropy of the classifier's output on a labelled minibatch.

        As in scVI 0.5, the classifier's output (probabilities for a
        :class:`~scvi.models.Classifier`) is passed to ``cross_entropy`` as logits.
        """
        x, labels = tensors_labelled[0], tensors_labelled[4].view(-1)
        model = self.sampling_model
        if model is not None and hasattr(model, "classify"):
            return F.cross_entropy(model.classify(x), labels)
        if model is not None:
            x = encode_for_classifier(model, x, self.sampling_zl)
        return F.cross_entropy(self.model(x), labels)

    @torch.no_grad()
    def compute_predictions(self, soft: bool = False) -> Tuple[np.ndarray, np.ndarray]:
        """True and predicted labels (or probabilities) of every cell of the dataset."""
        full_set = self.create_posterior(type_class=AnnotationPosterior)
        return compute_predictions(
            self.sampling_model,
            full_set,
            classifier=self.model,
            soft=soft,
            model_zl=self.sampling_zl,
        )


def draw_labelled_cells(
    labels: np.ndarray, n_labels: int, n_per_class: int, seed: int
) -> Tuple[np.ndarray, np.ndarray]:
    """Split cells into labelled and unlabelled ones, ``n_per_class`` labelled per label.

    The cells are visited in a random order drawn from ``seed`` (the order of
    ``np.random.seed(seed); np.random.permutation(n)``); the first ``n_per_class`` cells
    of each label are labelled. Labelled cells are returned in reverse visiting order,
    unlabelled cells in visiting order (the split and order of scVI 0.5).

    Returns
    -------
    ``(labelled indices, unlabelled indices)``
    """
    labels = np.asarray(labels).ravel().astype(np.int64)
    permutation = np.random.RandomState(seed=seed).permutation(len(labels))
    visited = labels[permutation]
    counts = np.bincount(visited, minlength=n_labels)
    by_label = np.argsort(visited, kind="stable")
    rank = np.empty(len(labels), dtype=np.int64)
    rank[by_label] = np.arange(len(labels)) - np.repeat(
        np.cumsum(counts) - counts, counts
    )
    is_labelled = rank < n_per_class
    return permutation[np.flatnonzero(is_labelled)[::-1]], permutation[~is_labelled]


def _label_names(
    gene_dataset: GeneExpressionDataset, labels: Sequence[int]
) -> List[str]:
    names = getattr(gene_dataset, "cell_types", None)
    if names is None or len(names) < gene_dataset.n_labels:
        return [str(label) for label in labels]
    return [f"{label} ({names[label]})" for label in labels]


class SemiSupervisedTrainer(UnsupervisedTrainer):
    """Semi-supervised training of SCANVI or VAEC from a few labelled cells per label.

    Each step adds the negative ELBO of a minibatch of all cells, computed *without* their
    labels, to ``classification_ratio`` times the cross-entropy of the classifier on a
    minibatch of labelled cells. After each epoch the classifier alone is trained for
    ``n_epochs_classifier`` epochs on the labelled cells (with the rest of the model frozen
    in evaluation mode).

    Parameters
    ----------
    model
        A model with ``classify`` and ``classifier``: :class:`~scvi.models.SCANVI` or
        :class:`~scvi.models.VAEC`.
    gene_dataset
        The dataset; its labels are the cell types to learn.
    n_labelled_samples_per_class
        Number of labelled cells drawn per label (all cells of a smaller label).
    n_epochs_classifier
        Classifier-only epochs after each epoch.
    lr_classification
        Learning rate of the classifier-only epochs.
    classification_ratio
        Weight of the classification loss.
    seed
        Seed of the draw of labelled cells.
    **kwargs
        Arguments of :class:`~scvi.inference.UnsupervisedTrainer`.

    Attributes
    ----------
    full_dataset, labelled_set, unlabelled_set
        :class:`AnnotationPosterior` over all cells (shuffled), the labelled and the
        unlabelled cells. Assign another posterior to ``labelled_set`` (e.g. the cells of
        one batch) to choose the labelled cells yourself.
    classifier_trainer
        The :class:`ClassifierTrainer` of the classifier-only epochs.

    Examples
    --------
    >>> scanvi = SCANVI(gene_dataset.nb_genes, gene_dataset.n_batches, gene_dataset.n_labels)
    >>> trainer = SemiSupervisedTrainer(scanvi, gene_dataset, n_labelled_samples_per_class=10)
    >>> trainer.train(n_epochs=100)
    >>> trainer.unlabelled_set.accuracy()
    """

    def __init__(
        self,
        model: torch.nn.Module,
        gene_dataset: GeneExpressionDataset,
        n_labelled_samples_per_class: int = 50,
        n_epochs_classifier: int = 1,
        lr_classification: float = 5 * 1e-3,
        classification_ratio: float = 50,
        seed: int = 0,
        **kwargs: Any,
    ):
        if not (hasattr(model, "classify") and hasattr(model, "classifier")):
            raise TypeError(
                f"{type(model).__name__} has no classifier: semi-supervised training needs "
                "a model with `classify` and `classifier`, such as SCANVI or VAEC."
            )
        n_labels = gene_dataset.n_labels
        if getattr(model, "n_labels", n_labels) < n_labels:
            raise ValueError(
                f"The dataset has {n_labels} labels but the model was built with "
                f"n_labels={model.n_labels}; build it with n_labels=gene_dataset.n_labels."
            )
        if int(n_labelled_samples_per_class) < 1:
            raise ValueError(
                "n_labelled_samples_per_class must be at least 1, got "
                f"{n_labelled_samples_per_class}."
            )
        super().__init__(model, gene_dataset, **kwargs)
        self.n_epochs_classifier = n_epochs_classifier
        self.lr_classification = lr_classification
        self.classification_ratio = classification_ratio

        labels = np.asarray(gene_dataset.labels).ravel()
        counts = np.bincount(labels.astype(np.int64), minlength=n_labels)
        short = np.flatnonzero(counts < n_labelled_samples_per_class)
        if len(short):
            logger.warning(
                "Asked for %d labelled cells per label, but these labels have fewer cells, "
                "all of which are labelled: %s.",
                n_labelled_samples_per_class,
                ", ".join(
                    f"{name}: {counts[k]}"
                    for name, k in zip(_label_names(gene_dataset, short), short)
                ),
            )
        indices_labelled, indices_unlabelled = draw_labelled_cells(
            labels, n_labels, int(n_labelled_samples_per_class), seed
        )

        self.classifier_trainer = ClassifierTrainer(
            model.classifier,
            gene_dataset,
            metrics_to_monitor=[],
            show_progbar=False,
            frequency=0,
            sampling_model=self.model,
            use_cuda=self.use_cuda,
        )
        self.full_dataset = self.create_posterior(shuffle=True)
        self.labelled_set = self.create_posterior(indices=indices_labelled)
        self.unlabelled_set = self.create_posterior(indices=indices_unlabelled)
        for posterior in (self.labelled_set, self.unlabelled_set):
            posterior.to_monitor = ["reconstruction_error", "accuracy"]

    @property
    def posteriors_loop(self) -> List[str]:
        """Each step sees a minibatch of all cells and one of labelled cells."""
        return ["full_dataset", "labelled_set"]

    def __setattr__(self, name: str, value: Any) -> None:
        if name.strip("_") == "labelled_set" and isinstance(value, Posterior):
            self._check_labelled_set(value)
            self.classifier_trainer.train_set = value
        super().__setattr__(name, value)

    def _check_labelled_set(self, posterior: Posterior) -> None:
        """Refuse an empty labelled set; warn about labels without labelled cells."""
        if posterior.nb_cells == 0:
            raise ValueError(
                "The labelled set is empty: semi-supervised training needs labelled cells."
            )
        present = np.unique(
            np.asarray(self.gene_dataset.labels).ravel()[posterior.indices]
        )
        missing = np.setdiff1d(np.arange(self.gene_dataset.n_labels), present)
        if len(missing):
            logger.warning(
                "No labelled cell has label(s) %s: the classifier learns them only through "
                "the unlabelled cells and will rarely predict them.",
                ", ".join(_label_names(self.gene_dataset, missing)),
            )

    def loss(
        self,
        tensors_all: Sequence[torch.Tensor],
        tensors_labelled: Sequence[torch.Tensor],
    ) -> torch.Tensor:
        """Negative ELBO of all cells (labels hidden) plus the weighted classification loss."""
        loss = super().loss(_hide_labels(tensors_all))
        x, labels = tensors_labelled[0], tensors_labelled[4]
        classification_loss = F.cross_entropy(self.model.classify(x), labels.view(-1))
        return loss + classification_loss * self.classification_ratio

    def on_epoch_end(self) -> bool:
        """Train the classifier alone (rest of the model in eval mode), then record metrics."""
        self.model.eval()
        self.classifier_trainer.train(
            self.n_epochs_classifier, lr=self.lr_classification
        )
        self.model.train()
        return super().on_epoch_end()

    def create_posterior(
        self,
        model: Optional[torch.nn.Module] = None,
        gene_dataset: Optional[GeneExpressionDataset] = None,
        shuffle: bool = False,
        indices: Optional[np.ndarray] = None,
        type_class: Type[Posterior] = AnnotationPosterior,
    ) -> Posterior:
        """Same as :meth:`Trainer.create_posterior`, with :class:`AnnotationPosterior` by default."""
        return super().create_posterior(
            model, gene_dataset, shuffle, indices, type_class
        )


def _hide_labels(tensors: Sequence[torch.Tensor]) -> List[Optional[torch.Tensor]]:
    """The five standard minibatch tensors with the labels replaced by None."""
    return [*tensors[:4], None]


class JointSemiSupervisedTrainer(SemiSupervisedTrainer):
    """:class:`SemiSupervisedTrainer` without classifier-only epochs (joint objective only).

    Parameters
    ----------
    model, gene_dataset, **kwargs
        As for :class:`SemiSupervisedTrainer`; ``n_epochs_classifier`` is always 0.
    """

    def __init__(
        self, model: torch.nn.Module, gene_dataset: GeneExpressionDataset, **kwargs
    ):
        if kwargs.get("n_epochs_classifier", 0):
            logger.warning(
                "JointSemiSupervisedTrainer ignores n_epochs_classifier=%s (always 0).",
                kwargs["n_epochs_classifier"],
            )
        kwargs["n_epochs_classifier"] = 0
        super().__init__(model, gene_dataset, **kwargs)


class AlternateSemiSupervisedTrainer(SemiSupervisedTrainer):
    """:class:`SemiSupervisedTrainer` alternating unsupervised and classifier-only epochs.

    Each epoch optimises the ELBO of all cells (labels hidden); the classifier is then
    trained alone for ``n_epochs_classifier`` epochs on the labelled cells.

    Parameters
    ----------
    *args, **kwargs
        As for :class:`SemiSupervisedTrainer`.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)

    def loss(self, all_tensor: Sequence[torch.Tensor]) -> torch.Tensor:
        """Negative ELBO of a minibatch of all cells, labels hidden."""
        return UnsupervisedTrainer.loss(self, _hide_labels(all_tensor))

    @property
    def posteriors_loop(self) -> List[str]:
        """Each step sees a minibatch of all cells only."""
        return ["full_dataset"]
