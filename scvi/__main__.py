"""``python -m scvi``: train scVI on the embedded PBMC dataset (see :mod:`scvi._demo`)."""

import sys

from scvi._demo import main

sys.exit(main())
