"""Training loops (trainers) and posterior analysis."""

from .posterior import Posterior
from .trainer import Trainer
from .inference import AdapterTrainer, UnsupervisedTrainer
from .total_inference import TotalPosterior, TotalTrainer

__all__ = [
    "Trainer",
    "Posterior",
    "UnsupervisedTrainer",
    "AdapterTrainer",
    "TotalPosterior",
    "TotalTrainer",
]
