"""Real depth teachers: MiDaS v2.1 (the paper's, Sec. III-B) and DPT / Depth Anything (transformers).

Both load only local files (no hub, no download) and return the teacher dict of
:class:`~dbd_lightning.models.ddffnet.teachers.FrozenTeacher`: four feature maps and a
depth map normalised per image to [0, 1] (min-max; MiDaS and DPT predict
relative inverse depth).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from ...data.transforms import IMAGENET_MEAN, IMAGENET_STD
from ...utils.checkpoint import load_state_dict
from .depth_losses import minmax_normalize
from .teachers import FrozenTeacher


def renormalize(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Re-express an ImageNet-normalised batch in another (mean, std) normalisation (no-op for ImageNet)."""
    if tuple(mean) == tuple(IMAGENET_MEAN) and tuple(std) == tuple(IMAGENET_STD):
        return x
    m_in, s_in = (torch.tensor(v, dtype=x.dtype, device=x.device).view(1, -1, 1, 1) for v in (IMAGENET_MEAN, IMAGENET_STD))
    m, s = (torch.tensor(v, dtype=x.dtype, device=x.device).view(1, -1, 1, 1) for v in (mean, std))
    return (x * s_in + m_in - m) / s


def midas_to_timm_resnet(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Encoder keys of a MiDaS v2.1 state dict -> timm/torchvision ResNe(X)t names.

    MiDaS wraps the ResNeXt-101 WSL backbone as ``pretrained.layer1 = Sequential(conv1, bn1,
    relu, maxpool, layer1)`` and ``pretrained.layer2..4 = layer2..4``; ``scratch.*`` is the
    depth decoder (dropped here).
    """
    out = {}
    for key, value in state.items():
        if not key.startswith("pretrained."):
            continue
        k = key[len("pretrained."):]
        for old, new in (("layer1.0.", "conv1."), ("layer1.1.", "bn1."), ("layer1.4.", "layer1.")):
            if k.startswith(old):
                k = new + k[len(old):]
                break
        out[k] = value
    return out


class MidasTeacher(FrozenTeacher):
    """MiDaS v2.1 (ResNeXt-101 32x8d WSL encoder, levels 256/512/1024/2048 at strides 4..32).

    Two offline modes:
    - ``hub_dir`` set: the full model from a local clone of the MiDaS repository
      (``torch.hub.load(hub_dir, model_type, source="local", pretrained=False)``), weights
      from ``weights`` (``midas_v21-f6b98070.pt``, loaded with ``weights_only=True``).
      Features are ``model.pretrained.layer1..4``; depth is the model's output.
      (MiDaS builds its backbone through ``torch.hub`` too: its WSL repo must be in the
      local hub cache, ``TORCH_HOME``.)
    - ``hub_dir`` null: encoder only, built with timm (``encoder``, same key layout) and
      loaded from the ``pretrained.*`` keys of ``weights``. Features only: no depth output
      (enough for feature distillation; R-DFFNet needs the full model).
    """

    def __init__(
        self,
        weights: str | None = None,
        hub_dir: str | None = None,
        model_type: str = "MiDaS",
        encoder: str = "resnext101_32x8d",
        channels: list[int] | None = None,
    ) -> None:
        super().__init__()
        if weights and not os.path.isfile(weights):
            raise FileNotFoundError(f"MiDaS weights not found: {weights}")
        self.full = hub_dir is not None
        if self.full:
            if not Path(hub_dir, "hubconf.py").is_file():
                raise FileNotFoundError(f"no hubconf.py in MiDaS hub_dir {hub_dir}")
            self.model = torch.hub.load(hub_dir, model_type, source="local", pretrained=False, trust_repo=True)
            if weights:
                self.model.load_state_dict(load_state_dict(weights), strict=True)
            layers = [getattr(self.model.pretrained, f"layer{i}") for i in range(1, 5)]
            with torch.no_grad():
                probe = torch.zeros(1, 3, 64, 64)
                chans = []
                for layer in layers:
                    probe = layer(probe)
                    chans.append(probe.shape[1])
            self.channels = chans
        else:
            if not weights:
                raise ValueError("MidasTeacher needs weights=/path/to/midas_v21-f6b98070.pt (or a hub_dir)")
            import timm

            self.model = timm.create_model(encoder, pretrained=False, features_only=True, out_indices=(1, 2, 3, 4))
            state = midas_to_timm_resnet(load_state_dict(weights))
            missing, unexpected = self.model.load_state_dict(state, strict=False)
            missing = [k for k in missing if not k.endswith("num_batches_tracked")]
            if missing or unexpected:
                raise RuntimeError(f"MiDaS encoder weights do not match {encoder!r}: missing {missing[:6]}, "
                                   f"unexpected {list(unexpected)[:6]}")
            self.channels = list(self.model.feature_info.channels())
        self.check_channels(channels)
        self.freeze()

    def extract(self, image: torch.Tensor) -> dict:
        if not self.full:
            return {"features": list(self.model(image))}
        feats, x = [], image
        for i in range(1, 5):
            x = getattr(self.model.pretrained, f"layer{i}")(x)
            feats.append(x)
        depth = self.model(image)
        depth = depth[:, None] if depth.dim() == 3 else depth
        depth = F.interpolate(depth.float(), size=image.shape[-2:], mode="bilinear", align_corners=False)
        return {"features": feats, "depth": minmax_normalize(depth)}


class HFDepthTeacher(FrozenTeacher):
    """DPT / Depth Anything through ``transformers.AutoModelForDepthEstimation`` from a local folder.

    Features: the outputs of the DPT neck's four ``convs`` (after reassembly, before
    fusion): ``fusion_hidden_size`` channels each at strides 4, 8, 16, 32 of the patch grid
    (3.5..28 for 14-px patches); they are resized to the student's levels by the loss.
    Depth: ``predicted_depth`` resized to the image and min-max normalised.

    Args:
        path: a folder written by ``save_pretrained`` (config + weights); ``local_files_only``,
            loaded in float32 whatever dtype the folder was saved in.
        input_size: square size the teacher sees (DPT's ViT reassembly needs a square grid,
            Depth Anything's does not; a multiple of the patch size: 384 DPT, 518 Depth
            Anything); ``None`` = as given.
        mean / std: the teacher's normalisation (input batches are ImageNet-normalised;
            DPT-large uses 0.5/0.5, Depth Anything ImageNet).
    """

    def __init__(
        self,
        path: str,
        input_size: int | None = None,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        channels: list[int] | None = None,
    ) -> None:
        super().__init__()
        try:
            from transformers import AutoModelForDepthEstimation
        except ImportError as exc:  # optional dependency
            raise ImportError("HFDepthTeacher needs `transformers` (pip install transformers==5.23.0)") from exc
        if not Path(path).is_dir():
            raise FileNotFoundError(f"depth model folder not found: {path}")
        # transformers 5 loads in the folder's saved dtype by default (dtype="auto"): a float16 export
        # would then meet float32 batches; the teacher is float32 like the student (AMP casts on the fly).
        self.model = AutoModelForDepthEstimation.from_pretrained(path, local_files_only=True, dtype=torch.float32)
        neck = getattr(self.model, "neck", None)
        if neck is None or not hasattr(neck, "convs") or len(neck.convs) != 4:
            raise ValueError(f"{type(self.model).__name__} has no DPT-style neck with four convs")
        self._captured: list[torch.Tensor] = []
        for conv in neck.convs:
            conv.register_forward_hook(lambda _m, _i, out: self._captured.append(out))
        self.channels = [int(c.out_channels) for c in neck.convs]
        self.input_size = input_size
        self.mean, self.std = tuple(mean), tuple(std)
        self.check_channels(channels)
        self.freeze()

    def extract(self, image: torch.Tensor) -> dict:
        x = renormalize(image, self.mean, self.std)
        if self.input_size:
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
        self._captured.clear()
        depth = self.model(pixel_values=x).predicted_depth
        feats, self._captured = list(self._captured), []
        depth = F.interpolate(depth[:, None].float(), size=image.shape[-2:], mode="bilinear", align_corners=False)
        return {"features": feats, "depth": minmax_normalize(depth)}


__all__ = ["HFDepthTeacher", "MidasTeacher", "midas_to_timm_resnet", "renormalize"]
