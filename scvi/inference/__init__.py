"""Training loops (trainers) and posterior analysis."""

from .annotation import (
    AlternateSemiSupervisedTrainer,
    ClassifierTrainer,
    JointSemiSupervisedTrainer,
    SemiSupervisedTrainer,
)
from .inference import AdapterTrainer, UnsupervisedTrainer
from .jvae_trainer import JVAETrainer
from .posterior import Posterior
from .total_inference import TotalPosterior, TotalTrainer
from .trainer import Trainer

__all__ = [
    "Trainer",
    "Posterior",
    "UnsupervisedTrainer",
    "AdapterTrainer",
    "JointSemiSupervisedTrainer",
    "SemiSupervisedTrainer",
    "AlternateSemiSupervisedTrainer",
    "ClassifierTrainer",
    "JVAETrainer",
    "TotalPosterior",
    "TotalTrainer",
]
