"""Neural-network layers of the scVI models (the public home of every layer, as in scVI 0.5).

The core blocks live in :mod:`scvi.models._base_modules`; the layers specific to one model
live in private modules next to that model and are re-exported here.
"""

from scvi.models._base_modules import (
    Decoder,
    DecoderSCVI,
    Encoder,
    FCLayers,
    LinearDecoderSCVI,
    reparameterize_gaussian,
)
from scvi.models._modules_jvae import MultiDecoder, MultiEncoder
from scvi.models._modules_totalvi import DecoderTOTALVI, EncoderTOTALVI

__all__ = [
    "FCLayers",
    "Encoder",
    "DecoderSCVI",
    "LinearDecoderSCVI",
    "Decoder",
    "MultiEncoder",
    "MultiDecoder",
    "DecoderTOTALVI",
    "EncoderTOTALVI",
    "reparameterize_gaussian",
]
