"""The web page's work without the web page: photos in, the pictures and files to show out.

:class:`FocusApp.predict` is the page's callback as a plain function (no Gradio here, so it is
tested without a browser or Gradio installed). For each photo it writes, in a new folder of its
own (never over an existing file):

* ``<stem>_focus.png``: the in-focus probability as grey levels (white = in focus), the same
  pixels ``python -m dbd_lightning.predict`` writes to ``focus/<stem>.png``;
* ``<stem>_overlay.png``: the photo blended with the colour-mapped map (predict's ``overlay/``);
* ``<stem>_mask.png``: the map thresholded at the page's threshold (white = in focus);
* ``<stem>_<key>.png`` / ``.npy`` for every extra map (Karaali's ``blur_radius`` in pixels):
  predict's min-max scaled picture and the raw values, with the range as a legend.

A file that is not an image, is too small or too large is refused with one sentence that names it
and the fix; the other photos are still predicted. The drawing is :mod:`dbd_lightning.render`'s.
"""

from __future__ import annotations

import html
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..data.image_files import read_rgb
from ..inference.predictor import Predictor, build_predictor, check_prediction
from ..render import focus_mask, normalised_png, overlay, to_uint8
from ..utils.errors import UserError

log = logging.getLogger(__name__)

#: a ``--ckpt`` value naming a non-learned pipeline (``conf/model/<name>.yaml``) instead of a checkpoint
MODEL_PREFIX = "model:"
#: what the values of an extra map are (the legend's unit)
UNITS = {"blur_radius": "px"}


class ImageRefused(UserError, ValueError):
    """An uploaded file that the page does not predict (not an image, too small, too large)."""


@dataclass(frozen=True)
class Settings:
    """The page's numbers (``conf/app.yaml``)."""

    threshold: float = 0.5
    overlay_alpha: float = 0.5
    max_megapixels: float = 24.0
    min_side: int = 16
    max_files: int = 16
    device: str = "auto"
    search_root: str = "outputs"
    model_overrides: tuple[str, ...] = ()


@dataclass
class Result:
    """What the page shows after one click: pictures (path, caption), files to download, the messages."""

    gallery: list[tuple[str, str]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    legends: list[str] = field(default_factory=list)
    folder: Path | None = None
    predicted: int = 0

    @property
    def message(self) -> str:
        """Markdown for the page's status box."""
        return "\n".join(f"- {m}" for m in self.messages)

    @property
    def legend(self) -> str:
        """HTML: one colour bar per extra map (empty when there is none)."""
        return "\n".join(self.legends)


def check_image(path: Path, settings: Settings) -> None:
    """Refuse a file that is not an image, or whose size is outside the page's limits, before decoding it."""
    name = path.name
    try:
        with Image.open(path) as img:  # reads the header only: a 48 MP photo is not decoded to be refused
            w, h = img.size
    except (UnidentifiedImageError, OSError, SyntaxError):
        raise ImageRefused(f"{name} is not an image file this page can read; upload a photo "
                           "(JPEG, PNG, TIFF, BMP or WebP)") from None
    if min(w, h) < settings.min_side:
        raise ImageRefused(f"{name} is {w}x{h} pixels, too small to find in-focus regions in; upload a photo "
                           f"at least {settings.min_side} pixels on each side")
    megapixels = w * h / 1e6
    if megapixels > settings.max_megapixels:
        raise ImageRefused(
            f"{name} is {w}x{h} pixels ({megapixels:.1f} MP), more than this page takes "
            f"({settings.max_megapixels:g} MP, --max-megapixels); downscale it, or predict it at full size "
            f"with `python -m dbd_lightning.predict ckpt=... input={name} output=DIR`, which tiles large photos")


def legend_html(title: str, lo: float, hi: float, unit: str) -> str:
    """A grey colour bar for a min-max scaled map: black = ``lo``, white = ``hi`` (in ``unit``)."""
    mid = (lo + hi) / 2
    ticks = "".join(f"<span>{v:.2f} {html.escape(unit)}</span>" for v in (lo, mid, hi))
    return (f'<div class="dbd-legend"><div>{html.escape(title)}</div>'
            '<div style="height:14px;background:linear-gradient(to right,#000,#fff);border:1px solid #888"></div>'
            f'<div style="display:flex;justify-content:space-between">{ticks}</div></div>')


def _save_png(path: Path, arr: np.ndarray) -> str:
    with open(path, "xb") as f:  # "x": never over an existing file
        Image.fromarray(arr).save(f, format="PNG")
    return str(path)


def _unique_stems(paths: list[Path]) -> list[str]:
    """File stems, numbered where two uploads share one (``a``, ``a_2``)."""
    seen: dict[str, int] = {}
    stems = []
    for p in paths:
        n = seen[p.stem] = seen.get(p.stem, 0) + 1
        stems.append(p.stem if n == 1 else f"{p.stem}_{n}")
    return stems


class FocusApp:
    """The page's state: its settings, the predictors built so far (one per model), where files go."""

    def __init__(self, settings: Settings | None = None, out_root: str | Path | None = None,
                 predictors: dict[str, Predictor] | None = None) -> None:
        self.settings = settings or Settings()
        self.out_root = Path(out_root) if out_root is not None else Path(tempfile.mkdtemp(prefix="dbd_app_"))
        self._predictors: dict[str, tuple[Predictor, str]] = {k: (v, k) for k, v in (predictors or {}).items()}

    # ------------------------------------------------------------------ models
    def predictor(self, spec: str) -> tuple[Predictor, str]:
        """The predictor for ``spec`` (``zoo:<name>``, a run folder, a ``.ckpt`` file, ``model:<pipeline>``),
        built once; a spec that names nothing usable raises a :class:`UserError` / ``ValueError``."""
        spec = str(spec or "").strip()
        if not spec:
            raise ImageRefused("no model chosen: pick a zoo model or type a run folder / .ckpt path")
        if spec not in self._predictors:
            self._predictors[spec] = self._build(spec)
        return self._predictors[spec]

    def _build(self, spec: str) -> tuple[Predictor, str]:
        if spec.startswith(MODEL_PREFIX):
            return build_pipeline(spec[len(MODEL_PREFIX):], self.settings)
        return build_predictor(ckpt=os.path.expanduser(spec), search_root=self.settings.search_root,
                               device=self.settings.device, backend="torch")

    # ---------------------------------------------------------------- callback
    def predict(self, files: list[str] | None, spec: str, threshold: float | None = None) -> Result:
        """Predict every uploaded photo with the model ``spec``; a refused photo is a message, not an error."""
        result = Result()
        paths = [Path(f) for f in (files or [])]
        if not paths:
            result.messages.append("No photo yet: drop one or more photos above, then press Predict.")
            return result
        if len(paths) > self.settings.max_files:
            result.messages.append(f"{len(paths)} files uploaded; this page predicts at most "
                                   f"{self.settings.max_files} at once (the first {self.settings.max_files} "
                                   "are predicted); use `python -m dbd_lightning.predict` for folders")
            paths = paths[: self.settings.max_files]
        threshold = self.settings.threshold if threshold is None else float(threshold)
        try:
            predictor, label = self.predictor(spec)
        except (UserError, ValueError, FileNotFoundError) as exc:
            result.messages.append(f"Model {spec!r} cannot be used: {exc}")
            return result
        self.out_root.mkdir(parents=True, exist_ok=True)
        result.folder = Path(tempfile.mkdtemp(prefix="run_", dir=self.out_root))
        for path, stem in zip(paths, _unique_stems(paths), strict=True):
            try:
                self._one(predictor, path, stem, threshold, result)
            except ImageRefused as exc:
                result.messages.append(str(exc))
            except Exception as exc:  # a bug or a model failure: one line on the page, the traceback in the log
                log.exception("predicting %s failed", path)
                result.messages.append(f"{path.name} could not be predicted ({type(exc).__name__}: {exc})")
        result.messages.insert(0, f"{result.predicted} of {len(paths)} photo(s) predicted with {label}; "
                                  f"mask threshold {threshold:g}.")
        return result

    def _one(self, predictor: Predictor, path: Path, stem: str, threshold: float, result: Result) -> None:
        check_image(path, self.settings)
        rgb = read_rgb(path)
        maps = predictor.predict_image(rgb)
        focus = check_prediction(maps, rgb.shape[:2], source=path.name)
        out = result.folder
        shown = [
            (_save_png(out / f"{stem}_focus.png", to_uint8(focus)), "in-focus map (white = in focus)"),
            (_save_png(out / f"{stem}_overlay.png", overlay(rgb, focus, self.settings.overlay_alpha)),
             "overlay (yellow = in focus, purple = blurred)"),
            (_save_png(out / f"{stem}_mask.png", focus_mask(focus, threshold)),
             f"mask (white = in-focus probability >= {threshold:g})"),
        ]
        for key in (k for k in maps if k != "focus"):
            value = np.asarray(maps[key], np.float32)
            png, lo, hi = normalised_png(value)
            unit = UNITS.get(key, "")
            shown.append((_save_png(out / f"{stem}_{key}.png", png),
                          f"{key} (black = {lo:.2f}, white = {hi:.2f}{' ' + unit if unit else ''})"))
            npy = out / f"{stem}_{key}.npy"
            with open(npy, "xb") as f:
                np.save(f, value)
            result.files.append(str(npy))
            result.legends.append(legend_html(f"{path.name}: {key}", lo, hi, unit))
        result.gallery += [(p, f"{path.name} · {caption}") for p, caption in shown]
        result.files += [p for p, _ in shown]
        result.predicted += 1


def build_pipeline(name: str, settings: Settings) -> tuple[Predictor, str]:
    """A non-learned pipeline (``conf/model/<name>.yaml``, e.g. Karaali's) with ``settings.model_overrides``."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from ..utils.config import config_dir

    overrides = [f"model={name}", "input=-", "output=-", *settings.model_overrides]
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir(), version_base="1.3"):
            cfg = compose("predict", overrides=overrides)
    except Exception as exc:
        raise ImageRefused(f"model:{name}: {str(exc).strip().splitlines()[0]}") from None
    finally:
        GlobalHydra.instance().clear()
    return build_predictor(model_cfg=cfg.model, model_name=name)
