"""Models of the scVI zoo, as ``torch.nn.Module`` subclasses."""

from .autozivae import AutoZIVAE
from .classifier import Classifier
from .jvae import JVAE
from .scanvi import SCANVI
from .totalvi import TOTALVI
from .vae import LDVAE, VAE
from .vaec import VAEC

__all__ = ["SCANVI", "VAEC", "VAE", "LDVAE", "JVAE", "Classifier", "AutoZIVAE", "TOTALVI"]
