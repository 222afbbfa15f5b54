"""Training loops (trainers) and posterior analysis."""

from .inference import AdapterTrainer, UnsupervisedTrainer
from .posterior import Posterior
from .jvae_trainer import JVAETrainer
from .total_inference import TotalPosterior, TotalTrainer
from .trainer import Trainer

__all__ = [
    "Trainer",
    "Posterior",
    "UnsupervisedTrainer",
    "AdapterTrainer",
    "JVAETrainer",
    "TotalPosterior",
    "TotalTrainer",
]
