"""Training loops (trainers) and posterior analysis."""

from .posterior import Posterior
from .trainer import Trainer
from .inference import AdapterTrainer, UnsupervisedTrainer

__all__ = ["Trainer", "Posterior", "UnsupervisedTrainer", "AdapterTrainer"]
