"""Predict maps for any images: ``python -m dbd_lightning.predict ckpt=<run> input=<file|folder|glob> output=DIR``.

``ckpt`` = a train run folder, one of its ``.ckpt`` files or ``wandb:<run id>``;
or ``model=<name>`` for a non-learned pipeline (see :mod:`dbd_lightning.predictors`
for the ``predict_image`` protocol both share). Every map is written at the
image's native resolution; large images are tiled with overlap blending
(``tile.*`` in ``conf/predict.yaml``). Unreadable files are skipped and listed
in ``report.json``; inputs are never overwritten.
"""

from __future__ import annotations

import glob
import json
import logging
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import cv2  # noqa: E402
import hydra  # noqa: E402
import numpy as np  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from omegaconf import DictConfig  # noqa: E402
from PIL import Image  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from .data.io import IMAGE_SUFFIXES, read_rgb  # noqa: E402
from .inference.modes import predictor_kwargs  # noqa: E402
from .predictors import Predictor, build_predictor, check_prediction  # noqa: E402
from .utils.config import config_dir  # noqa: E402

log = logging.getLogger(__name__)


class PredictInputError(ValueError):
    """The ``input=`` / ``output=`` of a predict call cannot be used."""


# --------------------------------------------------------------------------- #
# inputs
# --------------------------------------------------------------------------- #
def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


def _within(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def collect_inputs(spec: str, recursive: bool = False, exclude: Sequence[Path] = ()) -> list[tuple[Path, Path]]:
    """``(file, relative name without suffix)`` for a file, a folder (image suffixes only) or a glob.

    Folder / glob inputs under ``exclude`` (the output's map folders) are left
    out, so predicting into the input folder twice does not predict its own
    outputs. Two inputs with the same stem (``a.jpg``, ``a.png``) keep their
    suffix in the name.
    """
    path = Path(spec).expanduser()
    if path.is_file():
        files, base = [path], path.parent
    elif path.is_dir():
        it = path.rglob("*") if recursive else path.iterdir()
        files, base = sorted(p for p in it if _is_image(p)), path
        if not files:
            raise PredictInputError(
                f"no image files in {path}{' (recursive)' if recursive else ''} "
                f"(looked for {', '.join(IMAGE_SUFFIXES)})"
            )
    elif glob.has_magic(spec):
        files = sorted(Path(p) for p in glob.glob(os.path.expanduser(spec), recursive=True) if Path(p).is_file())
        if not files:
            raise PredictInputError(f"the pattern {spec!r} matches no file")
        base = Path(os.path.commonpath([str(p.parent.resolve()) for p in files]))
        files = [p.resolve() for p in files]
    else:
        raise PredictInputError(f"input not found: {spec} (expected an image file, a folder or a glob pattern)")
    if exclude and not path.is_file():
        files = [p for p in files if not any(_within(p, e) for e in exclude)]
        if not files:
            raise PredictInputError(f"every input under {spec} lies in an output folder ({', '.join(map(str, exclude))})")
    rel = [p.resolve().relative_to(base.resolve()).with_suffix("") for p in files]
    dup = {k for k, n in Counter(rel).items() if n > 1}
    rel = [r.with_name(f"{r.name}_{p.suffix.lstrip('.').lower()}") if r in dup else r
           for r, p in zip(rel, files, strict=True)]
    return list(zip(files, rel, strict=True))


# --------------------------------------------------------------------------- #
# outputs
# --------------------------------------------------------------------------- #
def to_uint8(focus: np.ndarray) -> np.ndarray:
    """A [0, 1] map as uint8 0..255 (rounded)."""
    return np.clip(np.asarray(focus, np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def normalised_png(arr: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Min-max normalised uint8 image of any real map, with the (min, max) used."""
    arr = np.asarray(arr, np.float64)
    finite = arr[np.isfinite(arr)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    scaled = (np.nan_to_num(arr, nan=lo) - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
    return to_uint8(scaled), lo, hi


def overlay(rgb: np.ndarray, focus: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """The image blended with the colour-mapped focus map (viridis: yellow = in focus, purple = blurred)."""
    colour = cv2.applyColorMap(to_uint8(focus), cv2.COLORMAP_VIRIDIS)[..., ::-1]
    out = rgb.astype(np.float32) * (1.0 - alpha) + colour.astype(np.float32) * alpha
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def output_paths(out: Path, rel: Path, maps: list[str], save_npy: bool, with_overlay: bool) -> list[Path]:
    paths = [out / "focus" / rel.with_suffix(".png")]
    if save_npy:
        paths.append(out / "focus" / rel.with_suffix(".npy"))
    if with_overlay:
        paths.append(out / "overlay" / rel.with_suffix(".png"))
    for key in maps:
        paths += [out / key / rel.with_suffix(".png"), out / key / rel.with_suffix(".npy")]
    return paths


def output_folders(out: Path, source: Path) -> list[Path]:
    """Folders whose images are outputs of (earlier) predict runs into ``out``, never inputs.

    ``out`` inside the input folder: all of it; ``out`` = the input folder: its
    ``focus/``, ``overlay/`` and the extra-map folders a previous ``report.json`` lists.
    """
    if source.is_dir() and out.resolve() != source.resolve() and _within(out, source):
        return [out]
    folders = [out / "focus", out / "overlay"]
    reports = [out / "report.json"]
    if source.is_dir():  # other predict output folders below the input folder
        reports += [r for r in source.rglob("report.json") if r.parent.resolve() != out.resolve()]
    for report in reports:
        try:
            previous = json.loads(report.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(previous, dict) or "predictor" not in previous:
            continue
        if report.parent.resolve() != out.resolve():
            folders.append(report.parent)
        else:
            folders += [out / k for k in sorted({k for r in previous.get("ranges", {}).values() for k in r})]
    return folders


def _save_png(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def write_maps(out: Path, rel: Path, rgb: np.ndarray, maps: dict, cfg: DictConfig) -> dict:
    """Write one image's maps; returns the extra maps' value ranges for the report."""
    focus = check_prediction(maps, rgb.shape[:2], source=str(rel))
    _save_png(out / "focus" / rel.with_suffix(".png"), to_uint8(focus))
    if cfg.save_npy:
        np.save(out / "focus" / rel.with_suffix(".npy"), focus)
    if cfg.overlay:
        _save_png(out / "overlay" / rel.with_suffix(".png"), overlay(rgb, focus, float(cfg.overlay_alpha)))
    ranges = {}
    for key, value in maps.items():
        if key == "focus":
            continue
        value = np.asarray(value, np.float32)
        png, lo, hi = normalised_png(value)
        _save_png(out / key / rel.with_suffix(".png"), png)
        np.save(out / key / rel.with_suffix(".npy"), value)
        ranges[key] = [lo, hi]
    return ranges


# --------------------------------------------------------------------------- #
# the command
# --------------------------------------------------------------------------- #
def make_predictor(cfg: DictConfig) -> tuple[Predictor, str]:
    kwargs = {}
    if cfg.get("ckpt"):
        kwargs = dict(device=cfg.device, amp=cfg.amp, **predictor_kwargs(cfg),
                      image_size=list(cfg.image_size) if cfg.get("image_size") else None)
    model_name = None
    if cfg.get("model") is not None and not cfg.get("ckpt"):
        if HydraConfig.initialized():
            model_name = HydraConfig.get().runtime.choices.get("model")
    return build_predictor(ckpt=cfg.get("ckpt"), model_cfg=cfg.get("model"), model_name=model_name,
                           which=str(cfg.which), search_root=cfg.paths.log_dir, **kwargs)


def predict(cfg: DictConfig, predictor: Predictor | None = None, name: str | None = None) -> dict:
    """Run ``predictor`` (or the one the config names) on every input; returns the report dict."""
    out = Path(str(cfg.output)).expanduser()
    inputs = collect_inputs(str(cfg.input), bool(cfg.recursive), exclude=output_folders(out, Path(str(cfg.input))))
    if predictor is None:
        predictor, name = make_predictor(cfg)
    sources = {p.resolve() for p, _ in inputs}
    for path, rel in inputs:  # refuse before writing anything
        for target in output_paths(out, rel, [], bool(cfg.save_npy), bool(cfg.overlay)):
            if target.resolve() in sources:
                raise PredictInputError(f"output {target} would overwrite the input {path}; choose another output=")
    out.mkdir(parents=True, exist_ok=True)
    report: dict = {"predictor": name, "input": str(cfg.input), "output": str(out), "written": [], "failed": [],
                    "tiled": [], "ranges": {}}
    tiles = getattr(predictor, "uses_tiles", None)
    for path, rel in tqdm(inputs, desc=f"predict [{name}]", unit="img", dynamic_ncols=True):
        try:
            rgb = read_rgb(path)
            maps = predictor.predict_image(rgb)
            extra = [k for k in maps if k != "focus"]
            for target in output_paths(out, rel, extra, False, False):
                if target.resolve() in sources:
                    raise PredictInputError(f"output {target} would overwrite an input file")
            ranges = write_maps(out, rel, rgb, maps, cfg)
        except Exception as exc:  # one bad file must not stop the batch: report it and go on
            log.warning("skipped %s: %s", path, exc)
            report["failed"].append({"file": str(path), "error": f"{type(exc).__name__}: {exc}"})
            continue
        report["written"].append(str(rel))
        if tiles is not None and tiles(*rgb.shape[:2]):
            report["tiled"].append(str(rel))
        if ranges:
            report["ranges"][str(rel)] = ranges
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    msg = f"predict: {len(report['written'])} image(s) written to {out}"
    if report["tiled"]:
        msg += f" ({len(report['tiled'])} tiled)"
    if report["failed"]:
        msg += f"; {len(report['failed'])} skipped:\n" + "\n".join(
            f"  {f['file']}: {f['error']}" for f in report["failed"])
    print(msg, flush=True)
    if not report["written"]:
        raise RuntimeError(f"no image could be predicted ({len(report['failed'])} failed); see {out / 'report.json'}")
    if cfg.strict and report["failed"]:
        raise RuntimeError(f"{len(report['failed'])} input(s) failed (strict=true); see {out / 'report.json'}")
    return report


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="predict")
def main(cfg: DictConfig) -> None:
    predict(cfg)


if __name__ == "__main__":
    main()
