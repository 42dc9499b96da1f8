"""``python -m dbd_lightning.bench``: exit status 1 if any case failed (its error is in the JSON)."""

import sys

from .runner import cli

sys.exit(cli())
