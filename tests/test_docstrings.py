"""Every public object of scvi has a docstring, and the scVI 0.5 API is all public.

"Public" is decided by ``docs/_ext/scvi_public_api.py``, the rules the API reference is
generated with: a module's ``__all__`` (else what it defines without a leading ``_``),
and for a class the members it defines itself or takes from private helper bases. So
every object these tests check is one the documentation shows, and every object of
scVI 0.5's public API must be among them (except the few HISTORY.rst records as removed).
"""

import inspect
import sys
import types
from pathlib import Path
from typing import Any, Optional

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "docs" / "_ext"))

import scvi_public_api as api  # noqa: E402

# The classes and functions each public module of scVI 0.5.0 offered (the package
# modules: their ``__all__``), from the inventory of the original wheel.
API_05 = {
    "scvi": "set_verbosity",
    "scvi.dataset": """AnnDatasetFromAnnData DownloadableAnnDataset BrainLargeDataset
        CiteSeqDataset CbmcDataset CellMeasurement CortexDataset CsvDataset
        BreastCancerDataset MouseOBDataset GeneExpressionDataset DownloadableDataset
        Dataset10X BrainSmallDataset HematoDataset LoomDataset RetinaDataset
        FrontalCortexDropseqDataset PreFrontalCortexStarmapDataset PbmcDataset
        PurifiedPBMCDataset SeqfishDataset SeqFishPlusDataset SmfishDataset
        SyntheticDataset SyntheticRandomDataset SyntheticDatasetCorr
        ZISyntheticDatasetCorr""",
    "scvi.dataset.dataset": """compute_library_size concatenate_arrays remap_categories
        CellMeasurement DownloadableDataset GeneExpressionDataset""",
    "scvi.dataset.anndataset": """extract_data_from_anndata AnnDatasetFromAnnData
        DownloadableAnnDataset""",
    "scvi.dataset.brain_large": "BrainLargeDataset",
    "scvi.dataset.cite_seq": "CbmcDataset CiteSeqDataset CiteSeqFilenames",
    "scvi.dataset.cortex": "CortexDataset",
    "scvi.dataset.csv": "BreastCancerDataset CsvDataset MouseOBDataset",
    "scvi.dataset.dataset10X": "BrainSmallDataset Dataset10X",
    "scvi.dataset.hemato": "HematoDataset",
    "scvi.dataset.loom": """FrontalCortexDropseqDataset LoomDataset
        PreFrontalCortexStarmapDataset RetinaDataset""",
    "scvi.dataset.pbmc": "PbmcDataset PurifiedPBMCDataset",
    "scvi.dataset.seqfish": "SeqfishDataset",
    "scvi.dataset.seqfishplus": "SeqFishPlusDataset",
    "scvi.dataset.smfish": "SmfishDataset",
    "scvi.dataset.synthetic": """SyntheticDataset SyntheticDatasetCorr
        SyntheticRandomDataset ZISyntheticDatasetCorr""",
    "scvi.inference": """Trainer Posterior UnsupervisedTrainer AdapterTrainer
        JointSemiSupervisedTrainer SemiSupervisedTrainer AlternateSemiSupervisedTrainer
        ClassifierTrainer JVAETrainer TotalPosterior TotalTrainer""",
    "scvi.inference.trainer": "EarlyStopping SequentialSubsetSampler Trainer",
    "scvi.inference.inference": "AdapterTrainer UnsupervisedTrainer",
    "scvi.inference.posterior": """entropy_batch_mixing entropy_from_indices
        get_bayes_factors knn_purity nn_overlap plot_imputation proximity_imputation
        unsupervised_clustering_accuracy Posterior SequentialSubsetSampler""",
    "scvi.inference.annotation": """compute_accuracy compute_accuracy_classifier
        compute_accuracy_nn compute_accuracy_rf compute_accuracy_svc
        compute_accuracy_tuple compute_predictions Accuracy
        AlternateSemiSupervisedTrainer AnnotationPosterior ClassifierTrainer
        JointSemiSupervisedTrainer SemiSupervisedTrainer""",
    "scvi.inference.autotune": """auto_tune_scvi_model configure_asynchronous_logging
        DispatchHandler FminLauncherThread FminProcess FminTimeoutError HyperoptWorker
        ProgressListener StoppableThread WorkerLauncherThread""",
    "scvi.inference.jvae_trainer": "JPosterior JVAETrainer",
    "scvi.inference.total_inference": "TotalPosterior TotalTrainer",
    "scvi.models": "SCANVI VAEC VAE LDVAE JVAE Classifier AutoZIVAE TOTALVI",
    "scvi.models.vae": "LDVAE VAE",
    "scvi.models.vaec": "VAEC",
    "scvi.models.scanvi": "SCANVI",
    "scvi.models.autozivae": "AutoZIVAE",
    "scvi.models.jvae": "JVAE",
    "scvi.models.totalvi": "TOTALVI",
    "scvi.models.classifier": "Classifier",
    "scvi.models.modules": """reparameterize_gaussian Decoder DecoderSCVI
        DecoderTOTALVI Encoder EncoderTOTALVI FCLayers LinearDecoderSCVI MultiDecoder
        MultiEncoder""",
    "scvi.models.log_likelihood": """compute_elbo compute_marginal_log_likelihood_autozi
        compute_marginal_log_likelihood_scvi compute_reconstruction_error log_mixture_nb
        log_nb_positive log_zinb_positive""",
    "scvi.models.utils": "broadcast_labels enumerate_discrete iterate one_hot",
}

# 0.5 names that no longer exist, with the reason (each is recorded in HISTORY.rst).
REMOVED_05 = {
    "scvi.inference.autotune": {
        name: "Ray replaced 0.5's MongoDB workers, threads and their logging helpers"
        for name in """configure_asynchronous_logging DispatchHandler FminLauncherThread
            FminProcess HyperoptWorker ProgressListener StoppableThread
            WorkerLauncherThread""".split()
    },
}

INDEX = api.build_index()


def _docstring(obj: Any) -> Optional[str]:
    """The object's own docstring, ignoring the ones Python generates or inherits."""
    if inspect.isclass(obj):
        doc = obj.__dict__.get("__doc__")
        # dataclasses and namedtuples without a docstring get "Name(field, ...)".
        if doc and doc.startswith(obj.__name__ + "(") and "\n" not in doc.strip():
            return None
    else:
        doc = getattr(obj, "__doc__", None)
    return doc if doc and doc.strip() else None


def _unwrap(raw: Any) -> Optional[Any]:
    """The object carrying a class member's docstring; None for plain data."""
    if isinstance(raw, (staticmethod, classmethod)):
        return raw.__func__
    if isinstance(raw, property):
        return raw if raw.__doc__ else raw.fget
    if inspect.isfunction(raw) or inspect.isclass(raw) or inspect.isdatadescriptor(raw):
        return raw
    for attribute in ("func", "wrapped"):  # functools.cached_property, lazy_property
        if callable(getattr(raw, attribute, None)):
            return getattr(raw, attribute)
    return None


def _scvi_docstring_above(cls: type, defining: type, name: str) -> Optional[str]:
    """Docstring of the same member in an scvi class further up the MRO.

    autodoc shows an overriding method without a docstring with the inherited one; an
    scvi base's docstring describes it, a torch or stdlib one (``forward``) does not.
    """
    mro = cls.__mro__
    for base in mro[mro.index(defining) + 1 :]:
        if base.__module__.split(".")[0] != api.ROOT_PACKAGE or name not in vars(base):
            continue
        target = _unwrap(vars(base)[name])
        if target is not None and _docstring(target):
            return _docstring(target)
    return None


def _is_scvi_instance(obj: Any) -> bool:
    return not api.is_documentable(obj) and type(obj).__module__.startswith("scvi.")


def undocumented(index: api.ApiIndex, module_name: str) -> list[str]:
    """Public classes, functions, methods and properties homed in a module that have
    no docstring. Data cannot carry one and are not checked, except instances of scvi
    classes, which are documented by their class's docstring."""
    missing = []
    for name, obj in index.objects(module_name):
        if _is_scvi_instance(obj) and _docstring(type(obj)) is None:
            # Documented by its class's docstring (``scvi.settings``).
            missing.append(f"{module_name}.{name} (its class)")
        if not api.is_documentable(obj) or index.home(obj) != (module_name, name):
            continue
        target = f"{module_name}.{name}"
        if _docstring(obj) is None:
            missing.append(target)
        if not inspect.isclass(obj):
            continue
        for member, defining, raw in index.public_members(obj):
            carrier = _unwrap(raw)
            if carrier is None or _docstring(carrier):
                continue
            if not _scvi_docstring_above(obj, defining, member):
                missing.append(f"{target}.{member}")
    return missing


@pytest.mark.parametrize("module_name", list(INDEX.modules))
def test_public_objects_have_docstrings(module_name):
    module = INDEX.modules[module_name]
    assert _docstring(module), f"module {module_name} has no docstring"
    missing = undocumented(INDEX, module_name)
    assert not missing, "no docstring:\n  " + "\n  ".join(missing)


@pytest.mark.parametrize("module_name", list(API_05))
def test_api_05_objects_are_public(module_name):
    assert module_name in INDEX.modules, f"{module_name} is not a public module"
    removed = REMOVED_05.get(module_name, {})
    public = set(INDEX.names[module_name])
    absent = [name for name in API_05[module_name].split() if name not in public]
    unexplained = [name for name in absent if name not in removed]
    assert not unexplained, (
        f"scVI 0.5 names missing from the public API of {module_name} (and so from the "
        f"API reference): {unexplained}; export them (add to __all__) or record them in "
        "REMOVED_05 and HISTORY.rst"
    )
    still_there = [
        name for name in removed if hasattr(INDEX.modules[module_name], name)
    ]
    assert not still_there, f"listed as removed but present: {still_there}"


def test_every_public_object_has_a_home():
    for module_name in INDEX.modules:
        for _, obj in INDEX.objects(module_name):
            if api.is_documentable(obj):
                home_module, home_name = INDEX.home(obj)
                assert getattr(INDEX.modules[home_module], home_name) is obj


def _fake_index() -> tuple[api.ApiIndex, str]:
    """A hand-made module with documented and undocumented objects of every kind."""
    module_name = "scvi.fake_module"
    module = types.ModuleType(module_name, "A module.")

    class _Helper:
        def helper_method(self):
            pass

    class Base:
        """A public base."""

        def inherited_doc(self):
            """Documented in the scvi base."""

    class Documented(_Helper, Base):
        """Documented class."""

        def inherited_doc(self):
            pass

        def own(self):
            """Documented method."""

        def no_doc(self):
            pass

        @property
        def no_doc_property(self):
            return 1

        @staticmethod
        def no_doc_static():
            pass

        size = 3

    class Network(torch.nn.Module):
        """Documented module whose ``forward`` has no docstring of its own."""

        def forward(self, x):
            return x

    class Undocumented:
        pass

    def undocumented_function():
        pass

    class _Settings:
        pass

    objects = {
        "Base": Base,
        "Documented": Documented,
        "Network": Network,
        "Undocumented": Undocumented,
        "undocumented_function": undocumented_function,
        "settings": _Settings(),
    }
    defined = (_Helper, Base, Documented, Network, Undocumented, _Settings)
    for klass in defined + (undocumented_function,):
        klass.__module__ = module_name
    for name, obj in objects.items():
        setattr(module, name, obj)
    module.__all__ = list(objects)
    index = api.ApiIndex(
        modules={module_name: module},
        names={module_name: list(objects)},
        homes={
            id(obj): (module_name, name)
            for name, obj in objects.items()
            if api.is_documentable(obj)
        },
    )
    return index, module_name


def test_checker_reports_undocumented_objects():
    index, module_name = _fake_index()
    prefix = module_name + "."
    found = sorted(
        name.removeprefix(prefix) for name in undocumented(index, module_name)
    )
    assert found == [
        "Documented.helper_method",
        "Documented.no_doc",
        "Documented.no_doc_property",
        "Documented.no_doc_static",
        "Network.forward",
        "Undocumented",
        "settings (its class)",
        "undocumented_function",
    ]
