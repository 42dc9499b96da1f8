"""Environment defaults of the command-line entry points, set before any library reads them.

Every entry point (train, eval, predict, export, synth, bench, convert, zoo, ...) imports this
module first (``from . import _env``), before Hydra, Lightning, timm or albumentations are
imported: some of them read these variables once, at import. ``setdefault`` only: a value the
user exported wins (e.g. ``WANDB_MODE=online``, ``HF_HUB_OFFLINE=0`` to download weights).

* ``NO_ALBUMENTATIONS_UPDATE=1``: albumentations does not look for a newer version online.
* ``WANDB_MODE=offline``: W&B writes its runs locally (upload later: ``make wandb-sync``).
* ``HF_HUB_OFFLINE=1``: timm / huggingface_hub never reach the hub (weights come from local files).
"""

from __future__ import annotations

import os

#: variable -> value unless already set
ENV_DEFAULTS: dict[str, str] = {
    "NO_ALBUMENTATIONS_UPDATE": "1",
    "WANDB_MODE": "offline",
    "HF_HUB_OFFLINE": "1",
}

for _name, _value in ENV_DEFAULTS.items():
    os.environ.setdefault(_name, _value)
