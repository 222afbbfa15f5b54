"""Models of the scVI zoo, as ``torch.nn.Module`` subclasses."""

from .autozivae import AutoZIVAE
from .classifier import Classifier
from .jvae import JVAE
from .totalvi import TOTALVI
from .vae import LDVAE, VAE

__all__ = ["VAE", "LDVAE", "JVAE", "Classifier", "AutoZIVAE", "TOTALVI"]
