"""Image -> maps predictors shared by ``predict.py``, ``eval.py`` and ``export.py``.

Where a run's checkpoint is found: :mod:`dbd_lightning.runs.resolver`; how large images are cut
into tiles and blended: :mod:`.tiling`; this module: the protocol and the predictors.

The protocol (one place, used by every family)::

    class Predictor(Protocol):
        def predict_image(self, rgb: np.ndarray) -> dict[str, np.ndarray]: ...

* input: ``rgb`` uint8 ``(H, W, 3)`` RGB at the image's native resolution;
* output: a dict with at least ``"focus"``: float32 ``(H, W)`` in ``[0, 1]``,
  the **in-focus probability** (in-focus = 1, blurred = 0), at the input's
  resolution; optional extra maps at the same resolution (e.g. Karaali's
  ``"blur_radius"`` in pixels), which ``predict.py`` saves as ``.npy`` and as a
  min-max normalised PNG.

Two ways to get one (:func:`build_predictor`):

* ``ckpt=<run dir | .ckpt file | wandb:<run id>>``: a trained DBD network,
  rebuilt from the run's saved config and loaded with ``weights_only=True``,
  wrapped in :class:`CheckpointPredictor` (resizing to the training input size,
  tiling of large images, resize back);
* ``model=<name>`` without ``ckpt``: ``hydra.utils.instantiate`` of the whole
  ``conf/model/<name>.yaml`` node must return an object with ``predict_image``
  (non-learned pipelines such as Karaali's blur estimation).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
from omegaconf import DictConfig, open_dict

from ..data.normalization import IMAGENET_MEAN, IMAGENET_STD
from ..runs.resolver import resolve_checkpoint
from ..runs.run import CheckpointSpecError, RunCheckpoint
from .image_predictor import ImagePredictor, run_input
from .settings import InferenceSettings, as_settings

if TYPE_CHECKING:  # torch is imported where a network runs, not by `import` (a released model's graph needs none)
    import torch
    from torch import nn

log = logging.getLogger(__name__)


@runtime_checkable
class Predictor(Protocol):
    """Anything that maps one RGB image to named maps (see the module docstring)."""

    def predict_image(self, rgb: np.ndarray) -> dict[str, np.ndarray]: ...


# --------------------------------------------------------------------------- #
# DBD checkpoint predictor
# --------------------------------------------------------------------------- #
def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` = CUDA when available, else CPU; a device this machine does not have is a user error."""
    import torch

    from ..utils.errors import ConfigError

    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"device={device!r} is not a device ({exc}); use device=auto, cpu or cuda[:N]") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={device} but this machine has no usable CUDA GPU (torch.cuda.is_available() is "
                          "False); use device=cpu or device=auto")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(f"device={device} but only {torch.cuda.device_count()} CUDA GPU(s) are visible; "
                          "use device=cuda:0 or device=auto")
    return dev


class CheckpointPredictor(ImagePredictor):
    """A DBD network as a :class:`Predictor`: normalise, resize, run, sigmoid, resize back.

    Whole-image mode (the papers' test protocol): resize the image to
    ``image_size`` (bilinear, as the eval transform), predict, resize the
    in-focus probability back to the native size (bilinear), exactly what
    :class:`~dbd_lightning.tasks.detection.DetectionTask` scores in ``test``.

    Tiled mode (large images, e.g. EBD ~1600x1024): the native image is cut into
    ``tile.size`` squares overlapping by ``tile.overlap`` of their side; each
    tile is resized to ``image_size``, predicted, resized back, and the
    probabilities are blended with :func:`~.tiling.axis_windows` weights. With the
    default ``tile.size`` (2x the network input) a tile sees the same scale as a
    CUHK image (~640x480) resized to 320 in training. Tiles are blended with
    ``tile.window`` (:mod:`.tiling`: ``hann`` = seamless
    raised-cosine, ``linear`` = the earlier ramps).

    Scale-aware modes (``infer.mode``, :mod:`dbd_lightning.inference.modes`) run the
    network at a chosen pixel scale instead of the training input size:
    ``scale`` = the whole image resized by ``infer.scale`` (to a multiple of
    ``size_multiple``), predicted, resized back; ``tile`` = tiles of
    ``image_size / infer.scale`` native pixels (each resized to ``image_size``, i.e.
    seen at ``infer.scale``), always on, blended with ``tile.window``.

    Args:
        net: the torch model (returns ``{"logits": ...}``).
        settings: what the network sees: :class:`~.settings.InferenceSettings` (``image_size``, ``infer.*``
            with test-time fusion, ``tile.*``), a mapping in the config's layout (``{"tile": {"mode": False}}``)
            or ``None`` (the defaults: predict's; ``image_size=None`` = native size rounded to
            ``size_multiple``, :meth:`from_run` fills in the run's).
        mean / std: input normalisation (ImageNet by default, as the eval transform).
        device: ``"auto"`` = CUDA when available, else CPU.
        amp: bfloat16/float16 autocast on CUDA.
        backend: ``torch | onnxruntime | onnxruntime_int8 | auto`` (:mod:`dbd_lightning.inference.backends`);
            ``checkpoint`` (the weights' file) keys the cached ONNX graph.
        int8: ``backend=onnxruntime_int8``'s settings (:class:`~dbd_lightning.inference.quantize.Int8Settings`).
        size_multiple: the network's stride (sizes it is given are rounded to a multiple of it).
    """

    def __init__(
        self,
        net: nn.Module,
        settings: InferenceSettings | Mapping | None = None,
        *,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        device: str | torch.device = "auto",
        amp: bool = False,
        backend: str = "torch",
        checkpoint: str | Path | None = None,
        int8=None,
        size_multiple: int = 32,
    ) -> None:
        super().__init__(settings, size_multiple=size_multiple)
        import torch

        from .backends import make_backend

        self.device = resolve_device(device)
        self.net = net.to(self.device).eval()
        self.mean = torch.tensor(mean, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self.amp = amp and self.device.type == "cuda"
        self.backend = make_backend(backend, self.net, self.device, amp=self.amp, input_size=self.image_size,
                                    checkpoint=checkpoint, mean=tuple(mean), std=tuple(std), int8=int8)

    def _probabilities(self, crops: list[np.ndarray], input_size: tuple[int, int] | None = None) -> list[np.ndarray]:
        """In-focus probability of each uint8 RGB crop, at the crop's own size (network input ``input_size``)."""
        import torch

        with torch.inference_mode():
            return self._torch_probabilities(crops, input_size)

    def network_input(self, crops: list[np.ndarray], input_size: tuple[int, int] | None = None
                      ) -> tuple[list[tuple[int, int]], torch.Tensor]:
        """Each uint8 RGB crop's own size, and the float32 batch the network is given: the crops resized
        (:meth:`_resized_crops`) and normalised as the eval transform, ``(x - 255 mean) / (255 std)``."""
        import torch

        sizes, resized = self._resized_crops(crops, input_size)
        x = torch.stack([torch.from_numpy(np.ascontiguousarray(c)).permute(2, 0, 1) for c in resized])
        x = x.to(self.device).float()
        return sizes, (x - self.mean * 255.0) / (self.std * 255.0)

    def _torch_probabilities(self, crops: list[np.ndarray], input_size: tuple[int, int] | None) -> list[np.ndarray]:
        import torch
        import torch.nn.functional as F

        sizes, x = self.network_input(crops, input_size)
        probs = torch.sigmoid(self.backend.run(x))
        out = []
        for p, size in zip(probs, sizes, strict=True):
            if tuple(p.shape[-2:]) != tuple(size):
                p = F.interpolate(p[None], size=tuple(size), mode="bilinear", align_corners=False)[0]
            out.append(p[0].clamp(0, 1).cpu().numpy().astype(np.float32))
        return out

    # ---------------------------------------------------------------- builder
    @classmethod
    def from_run(cls, run: RunCheckpoint, settings: InferenceSettings | Mapping | None = None,
                 **kwargs) -> CheckpointPredictor:
        """Rebuild the run's network from its saved config and load the checkpoint (``weights_only=True``).

        ``settings`` as in the constructor; its ``image_size`` (when ``None``) and ``mean`` / ``std`` (when not
        given in ``kwargs``, the constructor's other arguments) default to the run's eval transform.
        """
        cfg = run.load_config()
        net_cfg = cfg.get("model", {}).get("net") if isinstance(cfg.get("model"), DictConfig) else None
        if net_cfg is None:
            raise CheckpointSpecError(f"{run.config_file} has no model.net node: not a DBD network run")
        with open_dict(net_cfg):  # never download weights for a network whose weights we load anyway
            for key in ("pretrained", "weights_file"):
                if key in net_cfg:
                    net_cfg[key] = False if key == "pretrained" else None
            net_cfg.pop("init_ckpt", None)  # the starting point of training: the checkpoint replaces it
        from ..runs.run_meta import check_checkpoint_matches_run
        from ..utils.checkpoint import load_weights
        from ..utils.config import instantiate_network

        check_checkpoint_matches_run(run.ckpt, cfg, run.config_file)  # another run's checkpoint: refused
        net = instantiate_network(net_cfg)
        load_weights(net, run.ckpt, prefix="net.")
        settings, kwargs["mean"], kwargs["std"] = run_input(cfg, as_settings(settings), kwargs.get("mean"),
                                                            kwargs.get("std"))
        kwargs.setdefault("checkpoint", run.ckpt)
        return cls(net, settings, **kwargs)


def build_predictor(
    ckpt: str | None = None,
    model_cfg: DictConfig | None = None,
    model_name: str | None = None,
    which: str = "best",
    search_root: str | Path = "outputs",
    **kwargs,
) -> tuple[Predictor, str]:
    """A :class:`Predictor` and its display name from ``ckpt=`` or a ``model=<name>`` config node.

    A released model (``ckpt=zoo:<name>``) on the CPU with onnxruntime runs its shipped, verified
    ONNX graph without importing torch (:func:`~.onnx_predictor.released_graph_predictor`: the same
    maps as :class:`CheckpointPredictor` with ``backend=onnxruntime``); everything else is a
    :class:`CheckpointPredictor`.
    """
    if ckpt:
        from .onnx_predictor import released_graph_predictor

        run = resolve_checkpoint(ckpt, which, search_root)
        log.info("predictor: %s (config %s)", run.ckpt, run.config_file)
        fast = released_graph_predictor(run, **kwargs)
        if fast is not None:
            return fast, run.label
        return CheckpointPredictor.from_run(run, **kwargs), run.label
    if model_cfg is None:
        raise ValueError("nothing to predict with: pass ckpt=<run dir | .ckpt | wandb:<id>> or model=<name>")
    import hydra

    name = model_name or str(model_cfg.get("_target_", "model")).rsplit(".", 1)[-1]
    try:
        obj = hydra.utils.instantiate(model_cfg)
    except Exception as exc:
        raise ValueError(
            f"model={name}: cannot build it without a checkpoint ({type(exc).__name__}: {str(exc)[:300]}). "
            "Trainable DBD networks need ckpt=<run dir>; model=<name> is for pipelines with predict_image()."
        ) from exc
    if not callable(getattr(obj, "predict_image", None)):
        raise ValueError(
            f"model={name} builds a {type(obj).__name__}, which has no predict_image(rgb) method; "
            "trained DBD networks are used through ckpt=<run dir | .ckpt>"
        )
    return obj, name


def check_prediction(maps: dict, shape: tuple[int, int], source: str = "predictor") -> np.ndarray:
    """Validate a :class:`Predictor` result and return its ``focus`` map (float32, ``shape``)."""
    if not isinstance(maps, dict) or "focus" not in maps:
        raise ValueError(f"{source}: predict_image must return a dict with a 'focus' map, got {type(maps).__name__}"
                         f"{' keys ' + str(sorted(maps)) if isinstance(maps, dict) else ''}")
    focus = np.asarray(maps["focus"], dtype=np.float32)
    if focus.shape != tuple(shape):
        raise ValueError(f"{source}: focus map has shape {focus.shape}, expected the image's {tuple(shape)}")
    lo, hi = (float(focus.min()), float(focus.max())) if focus.size else (0.0, 0.0)  # NaN / inf show here
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo < -1e-4 or hi > 1 + 1e-4:
        raise ValueError(f"{source}: focus map must be finite and in [0, 1] (got {lo}..{hi})")
    return focus if 0.0 <= lo and hi <= 1.0 else np.clip(focus, 0.0, 1.0)  # no full-size copy when in range
