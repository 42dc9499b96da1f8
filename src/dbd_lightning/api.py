"""The one-line Python API: a focus map inside your own script.

::

    from dbd_lightning import load_predictor

    predict = load_predictor("zoo:dffnet_lite0_synth")   # or a run folder, a .ckpt / .safetensors file
    focus = predict("photo.jpg")                          # or a uint8 RGB array (H, W, 3)
    # focus: float32 (H, W) in [0, 1], the in-focus probability (white = in focus), at the image's size

This is ``python -m dbd_lightning.predict`` without the files: the same checkpoint
resolver (:func:`dbd_lightning.runs.resolver.resolve_checkpoint`), the same predictor
(:class:`~dbd_lightning.inference.predictor.CheckpointPredictor`) and the same defaults,
read from ``conf/predict.yaml`` and the ``conf/inference/`` option it composes (``backend=auto``:
onnxruntime on CPU, ``device=auto``, tiling of large images), so a map from here equals the CLI's
``focus/<name>.npy``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

__all__ = ["FocusPredictor", "load_predictor"]

#: ``conf/predict.yaml`` keys that describe the predictor (the rest are about files: input, output, ...)
RUNTIME_KEYS = ("which", "device", "amp", "backend", "int8")
#: the inference settings (``conf/inference/``, :class:`~dbd_lightning.inference.settings.InferenceSettings`)
SETTINGS_KEYS = ("image_size", "infer", "tile")
PREDICTOR_KEYS = RUNTIME_KEYS + SETTINGS_KEYS


class FocusPredictor:
    """Callable: an image (path, uint8 RGB array or PIL image) -> its float32 ``(H, W)`` focus map.

    Built by :func:`load_predictor`; ``predictor`` is the underlying
    :class:`~dbd_lightning.inference.predictor.CheckpointPredictor` (``predict_image`` also
    returns any extra maps), ``name`` what it was loaded from (``zoo:<name>``, a run folder's name).
    """

    def __init__(self, predictor, name: str) -> None:
        self.predictor = predictor
        self.name = name

    def __repr__(self) -> str:
        return f"FocusPredictor({self.name!r})"

    def __call__(self, image) -> np.ndarray:
        from .inference.predictor import check_prediction

        rgb = as_rgb(image)
        return check_prediction(self.predictor.predict_image(rgb), rgb.shape[:2], source=self.name)


def as_rgb(image) -> np.ndarray:
    """``image`` as the uint8 ``(H, W, 3)`` RGB array the predictors take; anything else is a clear error."""
    if isinstance(image, str | os.PathLike):
        from .data.image_files import ImageReadError, read_rgb

        path = Path(image).expanduser()
        if not path.is_file():
            what = "is a folder" if path.is_dir() else "does not exist"
            raise FileNotFoundError(f"image {path} {what}; pass an image file (or a uint8 RGB array). "
                                    "For folders use python -m dbd_lightning.predict input=<folder>")
        try:
            return read_rgb(path)
        except ImageReadError as exc:
            raise ValueError(f"{exc}; pass a readable image file (JPEG, PNG, TIFF, ...)") from None
    if hasattr(image, "convert") and hasattr(image, "size") and not isinstance(image, np.ndarray):  # PIL image
        return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a file path, a numpy array or a PIL image, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or 0 in image.shape:
        raise ValueError(
            f"image array must be uint8 RGB of shape (H, W, 3), got {image.dtype} {image.shape}. Convert it "
            "first: a [0, 1] float image with (img * 255).round().astype(np.uint8), a grey one with "
            "np.repeat(img[..., None], 3, axis=2), an OpenCV BGR one with img[..., ::-1]")
    return image if image.flags.writeable else image.copy()  # torch.from_numpy warns on read-only arrays


def predict_defaults() -> DictConfig:
    """The predictor part of predict's config: ``conf/predict.yaml`` and the ``conf/inference/`` option it
    composes (without Hydra, which the light path does not import): the CLI's defaults, so both give the same
    maps."""
    from .utils.config import config_dir

    conf = Path(config_dir())
    cfg = OmegaConf.load(conf / "predict.yaml")
    choice = next((d["inference"] for d in cfg.get("defaults", []) if isinstance(d, DictConfig) and "inference" in d),
                  "default")
    settings = OmegaConf.load(conf / "inference" / f"{choice}.yaml")
    return OmegaConf.create({**{k: cfg[k] for k in RUNTIME_KEYS}, **{k: settings[k] for k in SETTINGS_KEYS}})


def load_predictor(ckpt: str | os.PathLike, **options) -> FocusPredictor:
    """A :class:`FocusPredictor` for ``ckpt``, ready to call on images.

    Args:
        ckpt: what ``python -m dbd_lightning.predict ckpt=`` takes: ``zoo:<name>`` (a released
            model, ``python -m dbd_lightning.zoo`` lists them), a train run folder, one of its
            ``.ckpt`` files, a released ``.safetensors`` file, or ``wandb:<run id>``.
        **options: ``conf/predict.yaml``'s predictor keys, e.g. ``device="cpu"``,
            ``backend="torch"``, ``which="last"``, ``tile={"mode": False}``,
            ``infer={"mode": "scale", "scale": 0.5}``; nested ones merge into the defaults.

    Raises:
        FileNotFoundError: ``ckpt`` names no run, checkpoint or released model (the message says
            what ``ckpt`` accepts).
        ValueError: an option that is not one of the predictor keys, or a bad value.
    """
    from .inference.predictor import build_predictor
    from .inference.settings import InferenceSettings, int8_settings

    unknown = sorted(set(options) - set(PREDICTOR_KEYS))
    if unknown:
        raise ValueError(f"load_predictor: unknown option(s) {unknown}; the options are {list(PREDICTOR_KEYS)} "
                         "(conf/predict.yaml documents each)")
    cfg = OmegaConf.merge(predict_defaults(), {k: _plain(v) for k, v in options.items()})
    kwargs = dict(settings=InferenceSettings.from_mapping(cfg), device=cfg.device, amp=cfg.amp,
                  backend=str(cfg.backend), int8=int8_settings(cfg))
    search_root = os.environ.get("DBD_LOG_DIR", "outputs")  # wandb:<id> runs, as paths.log_dir in the CLI
    predictor, name = build_predictor(ckpt=str(os.fspath(ckpt)), which=str(cfg.which), search_root=search_root,
                                      **kwargs)
    return FocusPredictor(predictor, name)


def _plain(value):
    """Option values as OmegaConf takes them (tuples become lists)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return list(value)
    return value
