"""Classification scores of the annotation module: predictions, accuracies and baselines.

Public through :mod:`scvi.inference.annotation`.
"""

import logging
from collections import namedtuple
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from sklearn.base import ClassifierMixin
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import SVC

logger = logging.getLogger(__name__)

ParamGrid = Union[Dict[str, Sequence[Any]], List[Dict[str, Sequence[Any]]]]

Accuracy = namedtuple(
    "Accuracy", ["unweighted", "weighted", "worst", "accuracy_classes"]
)
Accuracy.__doc__ = """Classification accuracy, overall and per class.

Fields
------
unweighted
    Fraction of correctly classified cells (per-class accuracies weighted by class size).
weighted
    Mean of the per-class accuracies (each class counts equally).
worst
    Lowest per-class accuracy.
accuracy_classes
    Accuracy (recall) of every class present in the true labels, in sorted label order.
"""


def encode_for_classifier(
    model: torch.nn.Module, x: torch.Tensor, model_zl: bool = False
) -> torch.Tensor:
    """Features a latent-space classifier reads: the posterior mean of ``z`` (and of ``l``).

    Parameters
    ----------
    model
        A model with ``z_encoder`` (and ``l_encoder``), e.g. :class:`~scvi.models.VAE`.
    x
        Counts, ``(batch, n_genes)``.
    model_zl
        Concatenate the library-size mean to the latent mean.
    """
    if model.log_variational:
        x = torch.log1p(x)
    features = model.z_encoder(x)[0]
    if model_zl:
        features = torch.cat((features, model.l_encoder(x)[0]), dim=-1)
    return features


@torch.no_grad()
def compute_predictions(
    model: Optional[torch.nn.Module],
    data_loader: Iterable[Sequence[torch.Tensor]],
    classifier: Optional[torch.nn.Module] = None,
    soft: bool = False,
    model_zl: bool = False,
) -> Tuple[np.ndarray, np.ndarray]:
    """True labels and predictions of the cells of a posterior (or any minibatch iterable).

    The prediction comes from ``model.classify`` when the model has one (SCANVI, VAEC);
    otherwise from ``classifier`` applied to the latent mean of ``model`` (or to the
    counts when ``model`` is None); otherwise ``model`` itself is the classifier.

    Parameters
    ----------
    model
        A model with ``classify``, an encoding model used with ``classifier``, a raw
        classifier, or None.
    data_loader
        Iterable of minibatches ``[x, local_l_mean, local_l_var, batch_index, labels, ...]``.
    classifier
        Classifier used when ``model`` has no ``classify``.
    soft
        Return class probabilities instead of the most probable class.
    model_zl
        Feed the classifier the latent mean of ``z`` concatenated with that of ``l``.

    Returns
    -------
    ``(labels (n_cells,), predictions (n_cells,) or probabilities (n_cells, n_labels))``
    """
    if model is None and classifier is None:
        raise TypeError("compute_predictions needs a model, a classifier, or both.")
    all_y: List[torch.Tensor] = []
    all_pred: List[torch.Tensor] = []
    for tensors in data_loader:
        x, labels = tensors[0], tensors[4]
        if hasattr(model, "classify"):
            prediction = model.classify(x)
        elif classifier is not None:
            features = x if model is None else encode_for_classifier(model, x, model_zl)
            prediction = classifier(features)
        else:
            prediction = model(x)
        all_y.append(labels.view(-1).cpu())
        all_pred.append((prediction if soft else prediction.argmax(dim=-1)).cpu())
    if not all_y:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 0) if soft else 0)
    return torch.cat(all_y).numpy(), torch.cat(all_pred).numpy()


@torch.no_grad()
def compute_accuracy(
    vae: Optional[torch.nn.Module],
    data_loader: Iterable[Sequence[torch.Tensor]],
    classifier: Optional[torch.nn.Module] = None,
    model_zl: bool = False,
) -> float:
    """Fraction of cells whose predicted label is right (see :func:`compute_predictions`).

    Returns NaN (with a warning) when ``data_loader`` holds no cells.
    """
    all_y, all_pred = compute_predictions(
        vae, data_loader, classifier=classifier, model_zl=model_zl
    )
    if all_y.size == 0:
        logger.warning("Accuracy of an empty set of cells is undefined; returning NaN.")
        return float("nan")
    return float(np.mean(all_y == all_pred))


def compute_accuracy_tuple(y: Any, y_pred: Any) -> Accuracy:
    """Overall, class-balanced, worst-class and per-class accuracy of predictions.

    Classes are the distinct values of ``y`` (integers or strings), in sorted order.

    Parameters
    ----------
    y
        True labels.
    y_pred
        Predicted labels, same length.
    """
    y = np.asarray(y).ravel()
    y_pred = np.asarray(y_pred).ravel()
    if y.shape != y_pred.shape:
        raise ValueError(f"y and y_pred differ in length: {y.size} vs {y_pred.size}.")
    if y.size == 0:
        raise ValueError("Cannot compute the accuracy of zero predictions.")
    classes, class_of_cell = np.unique(y, return_inverse=True)
    correct = y == y_pred
    class_sizes = np.bincount(class_of_cell, minlength=len(classes))
    accuracy_classes = np.bincount(
        class_of_cell, weights=correct, minlength=len(classes)
    )
    accuracy_classes = accuracy_classes / class_sizes
    return Accuracy(
        unweighted=float(np.dot(accuracy_classes, class_sizes / y.size)),
        weighted=float(np.mean(accuracy_classes)),
        worst=float(np.min(accuracy_classes)),
        accuracy_classes=[float(a) for a in accuracy_classes],
    )


def compute_accuracy_classifier(
    clf: ClassifierMixin,
    data_train: Any,
    labels_train: Any,
    data_test: Any,
    labels_test: Any,
) -> Tuple[Tuple[Accuracy, Accuracy], np.ndarray]:
    """Fit a scikit-learn classifier and score it on its training and test data.

    Returns
    -------
    ``((train Accuracy, test Accuracy), predicted test labels)``
    """
    labels_train = np.asarray(labels_train).ravel()
    labels_test = np.asarray(labels_test).ravel()
    n_classes = len(np.unique(labels_train))
    if n_classes < 2:
        raise ValueError(
            f"The training labels hold {n_classes} class(es); a classifier needs at least two."
        )
    clf.fit(data_train, labels_train)
    y_pred_test = clf.predict(data_test)
    y_pred_train = clf.predict(data_train)
    return (
        (
            compute_accuracy_tuple(labels_train, y_pred_train),
            compute_accuracy_tuple(labels_test, y_pred_test),
        ),
        y_pred_test,
    )


def compute_accuracy_nn(
    data_train: Any,
    labels_train: Any,
    data_test: Any,
    labels_test: Any,
    k: int = 5,
) -> Tuple[Tuple[Accuracy, Accuracy], np.ndarray]:
    """Accuracy of a distance-weighted ``k``-nearest-neighbour classifier.

    Returns
    -------
    As :func:`compute_accuracy_classifier`: ``((train Accuracy, test Accuracy),
    predicted test labels)``.
    """
    clf = KNeighborsClassifier(k, weights="distance")
    return compute_accuracy_classifier(
        clf, data_train, labels_train, data_test, labels_test
    )


def compute_accuracy_svc(
    data_train: Any,
    labels_train: Any,
    data_test: Any,
    labels_test: Any,
    param_grid: Optional[ParamGrid] = None,
    verbose: int = 0,
    max_iter: int = -1,
) -> Tuple[Tuple[Accuracy, Accuracy], np.ndarray]:
    """Accuracy of a support-vector classifier tuned by cross-validated grid search.

    Parameters
    ----------
    data_train, labels_train
        Training data (e.g. raw counts) and labels.
    data_test, labels_test
        Test data and labels.
    param_grid
        ``GridSearchCV`` grid; by default linear kernels with ``C`` in 1..1000 and RBF
        kernels with ``C`` in 1..1000 and ``gamma`` in {1e-3, 1e-4}.
    verbose
        Verbosity of the grid search.
    max_iter
        Iteration limit of the solver (-1: none).

    Returns
    -------
    As :func:`compute_accuracy_classifier`: ``((train Accuracy, test Accuracy),
    predicted test labels)``.
    """
    if param_grid is None:
        param_grid = [
            {"C": [1, 10, 100, 1000], "kernel": ["linear"]},
            {"C": [1, 10, 100, 1000], "gamma": [0.001, 0.0001], "kernel": ["rbf"]},
        ]
    clf = GridSearchCV(SVC(max_iter=max_iter), param_grid, verbose=verbose)
    return compute_accuracy_classifier(
        clf, data_train, labels_train, data_test, labels_test
    )


def compute_accuracy_rf(
    data_train: Any,
    labels_train: Any,
    data_test: Any,
    labels_test: Any,
    param_grid: Optional[ParamGrid] = None,
    verbose: int = 0,
) -> Tuple[Tuple[Accuracy, Accuracy], np.ndarray]:
    """Accuracy of a random forest (``random_state=0``) tuned by cross-validated grid search.

    Parameters
    ----------
    data_train, labels_train
        Training data and labels.
    data_test, labels_test
        Test data and labels.
    param_grid
        ``GridSearchCV`` grid; by default ``max_depth`` in 3..9 and ``n_estimators`` in
        {10, 50, 100, 200}.
    verbose
        Verbosity of the grid search.

    Returns
    -------
    As :func:`compute_accuracy_classifier`: ``((train Accuracy, test Accuracy),
    predicted test labels)``.
    """
    if param_grid is None:
        param_grid = {"max_depth": np.arange(3, 10), "n_estimators": [10, 50, 100, 200]}
    rf = RandomForestClassifier(max_depth=2, random_state=0)
    clf = GridSearchCV(rf, param_grid, verbose=verbose)
    return compute_accuracy_classifier(
        clf, data_train, labels_train, data_test, labels_test
    )
