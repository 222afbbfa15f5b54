"""Models of the scVI zoo, as ``torch.nn.Module`` subclasses."""

from .vae import LDVAE, VAE

__all__ = ["VAE", "LDVAE"]
