"""Models of the scVI zoo, as ``torch.nn.Module`` subclasses."""

from .totalvi import TOTALVI
from .vae import LDVAE, VAE

__all__ = ["VAE", "LDVAE", "TOTALVI"]
