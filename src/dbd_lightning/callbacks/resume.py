"""Random-number state in checkpoints, so a resumed run continues the uninterrupted run's RNG streams.

Lightning restores weights, optimizer, scheduler, loop counters and callback
states, but not the global RNGs (torch, numpy, python ``random``, CUDA). Data
order and augmentation do not need them here (see :mod:`dbd_lightning.data.sampler`);
dropout, random projections or any model-side sampling do.

The states are stored as tensors and plain Python numbers only, so checkpoints
still load with ``torch.load(..., weights_only=True)``. They are applied in
``on_train_start`` (after the sanity-check validation, which may draw from the
RNGs), i.e. exactly where the uninterrupted run stood when it wrote the checkpoint.
"""

from __future__ import annotations

import random
from typing import Any

import lightning as L
import numpy as np
import torch


def collect_rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": {"version": int(version), "internal": [int(v) for v in internal], "gauss_next": gauss_next},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class RNGStateCheckpoint(L.Callback):
    """Save the global RNG states with every checkpoint; restore them when training resumes."""

    def __init__(self) -> None:
        super().__init__()
        self._pending: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        return {"rng": collect_rng_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending = state_dict.get("rng")

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._pending is not None:
            set_rng_state(self._pending)
            self._pending = None
