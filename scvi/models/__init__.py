"""Models of the scVI zoo, as ``torch.nn.Module`` subclasses."""

from .autozivae import AutoZIVAE
from .jvae import JVAE
from .totalvi import TOTALVI
from .vae import LDVAE, VAE

__all__ = ["VAE", "LDVAE", "JVAE", "AutoZIVAE", "TOTALVI"]
