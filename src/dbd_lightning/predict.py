"""Predict maps for any images: ``python -m dbd_lightning.predict ckpt=<run> input=<file|folder|glob> output=DIR``.

``ckpt`` = a train run folder, one of its ``.ckpt`` files or ``wandb:<run id>``;
or ``model=<name>`` for a non-learned pipeline (see :mod:`dbd_lightning.inference.predictor`
for the ``predict_image`` protocol both share). Every map is written at the
image's native resolution; large images are tiled with overlap blending
(``tile.*``), or predicted at a chosen pixel scale (``infer.*``): the ``conf/inference/``
group, read into one :class:`~dbd_lightning.inference.settings.InferenceSettings`. Unreadable files are
skipped and listed in ``report.json``. Nothing predict did not write is ever
overwritten: an output folder is recognised as predict's own only by its own
earlier ``report.json`` (:mod:`dbd_lightning.predict_output`). Every file is
written atomically; a full disk stops the run with one line (exit 2), keeps the
finished files and leaves the folder to the same command's rerun.
"""

from __future__ import annotations

from . import _env  # noqa: F401  (first: the environment defaults, before any library import)

# isort: split

import glob
import logging
import os
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import cv2
import hydra
import numpy as np
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig
from PIL import Image
from tqdm.auto import tqdm

from .data.io import IMAGE_SUFFIXES, read_rgb
from .inference.predictor import Predictor, build_predictor, check_prediction
from .inference.settings import InferenceSettings, check_inference_config, int8_settings
from .models import registry
from .predict_output import OutputFolder, is_within, own_output_folders
from .render import normalised_png, overlay, to_uint8
from .utils import key_checks as kc
from .utils.atomic import DiskFullError, ensure_dir, write_atomic
from .utils.config import config_dir
from .utils.errors import UserError, handle_user_errors
from .utils.validate import precompose

log = logging.getLogger(__name__)

#: conf/predict.yaml's keys: type, range, existing paths (checked before any model loads or file is written).
#: ``input`` / ``output`` are checked by :func:`collect_inputs` / :class:`OutputFolder`, ``device`` / ``backend`` /
#: ``int8.*`` by the predictor they build, ``infer.*`` / ``tile.*`` / ``image_size`` by :mod:`.inference.modes`.
KEY_CHECKS = {
    "recursive": kc.flag(),
    "amp": kc.flag(),
    "save_npy": kc.flag(),
    "overlay": kc.flag(),
    "overlay_alpha": kc.number(0, 1, example=0.5),
    "edges": kc.existing("folder", example="<folder of edge maps>"),
    "memory.check": kc.flag(),
    "memory.bytes_per_pixel": kc.number(above=0, example=16),
    "strict": kc.flag(),
}


def check_config(cfg) -> None:
    """Refuse a bad value of a documented key (:data:`KEY_CHECKS`, and the inference settings through
    :func:`~dbd_lightning.inference.settings.check_inference_config`), naming it; nothing is loaded or written."""
    kc.check_keys(cfg, KEY_CHECKS, fix="Nothing was written.")
    check_inference_config(cfg)


class PredictInputError(UserError, ValueError):
    """The ``input=`` / ``output=`` of a predict call cannot be used."""


class PredictRunError(UserError, RuntimeError):
    """Inputs could not be predicted (every one, or any with ``strict=true``); the report lists why."""


# --------------------------------------------------------------------------- #
# inputs
# --------------------------------------------------------------------------- #
def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


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
        files = [p.absolute() for p in files]  # links kept (a link's own name names its maps); ".." kept, not collapsed
        base = Path(os.path.commonpath([str(p.parent) for p in files]))
    else:
        raise PredictInputError(f"input not found: {spec} (expected an image file, a folder or a glob pattern)")
    if exclude and not path.is_file():
        files = [p for p in files if not any(is_within(p, e) for e in exclude)]
        if not files:
            raise PredictInputError(f"every input under {spec} lies in an output folder ({', '.join(map(str, exclude))})")
    rel = [p.relative_to(base).with_suffix("") for p in files]  # lexical: a link to a file elsewhere is named here
    dup = {k for k, n in Counter(rel).items() if n > 1}
    rel = [r.with_name(f"{r.name}_{p.suffix.lstrip('.').lower()}") if r in dup else r
           for r, p in zip(rel, files, strict=True)]
    return list(zip(files, rel, strict=True))


# --------------------------------------------------------------------------- #
# outputs
# --------------------------------------------------------------------------- #
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

    Recognised only by predict's own earlier ``report.json`` (see
    :mod:`dbd_lightning.predict_output`); ``out`` inside the input folder: all of it.
    """
    return own_output_folders(out, source)


def _save_png(path: Path, arr: np.ndarray) -> None:
    write_atomic(path, lambda f: Image.fromarray(arr).save(f, format="PNG"))


def _save_npy(path: Path, arr: np.ndarray) -> None:
    write_atomic(path, lambda f: np.save(f, arr))


def _save_bgr_png(path: Path, bgr: np.ndarray) -> None:
    """A colour PNG from a BGR uint8 array; OpenCV encodes it in place (PIL would copy it to 4 bytes a pixel)."""
    ok, buf = cv2.imencode(".png", bgr)
    if not ok:
        raise OSError(f"cannot encode {path} as PNG")
    write_atomic(path, lambda f: f.write(memoryview(buf)))


def write_maps(out: Path, rel: Path, rgb: np.ndarray, maps: dict, cfg: DictConfig,
               folder: OutputFolder | None = None, reuse_rgb: bool = False) -> dict:
    """Write one image's maps; returns the extra maps' value ranges for the report.

    ``folder`` refuses (before writing this image's files) any target that predict did not write itself.
    ``reuse_rgb``: the overlay is blended into ``rgb`` itself (the caller no longer needs the pixels),
    so a 48 MP photo needs no second full-size colour buffer.
    """
    focus = check_prediction(maps, rgb.shape[:2], source=str(rel))
    extra = [k for k in maps if k != "focus"]
    targets = output_paths(out, rel, extra, bool(cfg.save_npy), bool(cfg.overlay))
    if folder is not None:
        folder.refuse_conflicts(targets)
        for target in targets:
            folder.claim(target)
    _save_png(out / "focus" / rel.with_suffix(".png"), to_uint8(focus))
    if cfg.save_npy:
        _save_npy(out / "focus" / rel.with_suffix(".npy"), focus)
    ranges = {}
    for key in extra:
        value = np.asarray(maps[key], np.float32)
        png, lo, hi = normalised_png(value)
        _save_png(out / key / rel.with_suffix(".png"), png)
        _save_npy(out / key / rel.with_suffix(".npy"), value)
        ranges[key] = [lo, hi]
    if cfg.overlay:  # last: with reuse_rgb it overwrites the pixels
        _save_bgr_png(out / "overlay" / rel.with_suffix(".png"),
                      overlay(rgb, focus, float(cfg.overlay_alpha), bgr=True, out=rgb if reuse_rgb else None))
    return ranges


# --------------------------------------------------------------------------- #
# the command
# --------------------------------------------------------------------------- #
def make_predictor(cfg: DictConfig) -> tuple[Predictor, str]:
    kwargs = {}
    if cfg.get("ckpt"):
        kwargs = dict(settings=InferenceSettings.from_mapping(cfg), device=cfg.device, amp=cfg.amp,
                      backend=str(cfg.get("backend", "auto")), int8=int8_settings(cfg))
    model_name = None
    if cfg.get("model") is not None and not cfg.get("ckpt"):
        from .inference.backends import note_pipeline_backend  # torch: only pipelines (model=) need it here

        if HydraConfig.initialized():
            model_name = HydraConfig.get().runtime.choices.get("model")
        note_pipeline_backend(str(cfg.get("backend", "auto")), model_name)
    return build_predictor(ckpt=cfg.get("ckpt"), model_cfg=cfg.get("model"), model_name=model_name,
                           which=str(cfg.which), search_root=cfg.paths.log_dir, **kwargs)


def _predict_all(cfg: DictConfig, predictor: Predictor, name: str | None, inputs: list[tuple[Path, Path]],
                 sources: set[Path], edge_maps, folder: OutputFolder, report: dict) -> None:
    """Predict and write every input into ``report``; one bad file is listed and skipped, a full disk stops."""
    out = folder.out
    header = {k: report[k] for k in ("predictor", "input", "output")}
    tiles = getattr(predictor, "uses_tiles", None)
    known_extra: set[str] = set()
    from .inference.image_memory import memory_guard

    fits = memory_guard(cfg.get("memory"))  # a photo too large for the memory left is skipped before decoding
    for path, rel in tqdm(inputs, desc=f"predict [{name}]", unit="img", dynamic_ncols=True):
        try:
            fits(path)
            rgb = read_rgb(path)
            maps = (predictor.predict_image(rgb) if edge_maps is None else  # edges=DIR (Karaali's -e)
                    predictor.predict_image(rgb, edges=registry.edge_map_module().read_edge_map(
                        edge_maps[path], rgb.shape[:2], path)))
            extra = [k for k in maps if k != "focus"]
            for target in output_paths(out, rel, extra, False, False):
                if target.resolve() in sources:
                    raise PredictInputError(f"output {target} would overwrite an input file")
            if set(extra) - known_extra:  # extra maps are known only now: announce them for every input once
                known_extra |= set(extra)
                folder.announce((t for _, r in inputs for t in output_paths(out, r, sorted(known_extra), False,
                                                                            False)), header)
            ranges = write_maps(out, rel, rgb, maps, cfg, folder, reuse_rgb=True)
        except DiskFullError:
            raise
        except Exception as exc:  # one bad file must not stop the batch: report it and go on
            log.warning("skipped %s: %s", path, exc)
            report["failed"].append({"file": str(path), "error": f"{type(exc).__name__}: {exc}"})
            continue
        report["written"].append(str(rel))
        if tiles is not None and tiles(*rgb.shape[:2]):
            report["tiled"].append(str(rel))
        if ranges:
            report["ranges"][str(rel)] = ranges


def predict(cfg: DictConfig, predictor: Predictor | None = None, name: str | None = None) -> dict:
    """Run ``predictor`` (or the one the config names) on every input; returns the report dict."""
    check_config(cfg)
    out = Path(str(cfg.output)).expanduser()
    folder = OutputFolder(out)  # refuses output= naming a file, a foreign report.json, an unwritable folder
    inputs = collect_inputs(str(cfg.input), bool(cfg.recursive), exclude=output_folders(out, Path(str(cfg.input))))
    sources = {p.resolve() for p, _ in inputs}
    for path, rel in inputs:  # refuse before writing anything
        for target in output_paths(out, rel, [], bool(cfg.save_npy), bool(cfg.overlay)):
            if target.resolve() in sources:
                raise PredictInputError(f"output {target} would overwrite the input {path}; choose another output=")
    folder.refuse_conflicts(t for _, rel in inputs for t in output_paths(out, rel, [], bool(cfg.save_npy),
                                                                         bool(cfg.overlay)))
    from .inference.image_memory import memory_guard

    memory_guard(cfg.get("memory"))  # a bad memory.* value stops here, before the model is loaded
    if predictor is None:
        predictor, name = make_predictor(cfg)
    edge_maps = registry.precomputed_edge_maps(cfg.get("edges"), predictor, name, [p for p, _ in inputs])
    ensure_dir(out)
    report: dict = {"predictor": name, "input": str(cfg.input), "output": str(out), "written": [], "failed": [],
                    "tiled": [], "ranges": {}}
    header = {k: report[k] for k in ("predictor", "input", "output")}
    try:  # the files are announced in report.json before any is written: a stopped run stays resumable
        folder.announce((t for _, rel in inputs for t in output_paths(out, rel, [], bool(cfg.save_npy),
                                                                       bool(cfg.overlay))), header)
        _predict_all(cfg, predictor, name, inputs, sources, edge_maps, folder, report)
    except DiskFullError as exc:  # stop: keep the finished files, record them if the disk still allows it
        report["stopped"] = str(exc)
        try:
            folder.write_report(report)
        except DiskFullError:
            log.warning("report.json could not be updated (disk full); the rerun still recognises the files "
                        "this run announced in it")
        raise
    finally:
        folder.close()
    folder.write_report(report)
    msg = f"predict: {len(report['written'])} image(s) written to {out}"
    if report["tiled"]:
        msg += f" ({len(report['tiled'])} tiled)"
    if report["failed"]:
        msg += f"; {len(report['failed'])} skipped:\n" + "\n".join(
            f"  {f['file']}: {f['error']}" for f in report["failed"])
    print(msg, flush=True)
    if not report["written"]:
        raise PredictRunError(f"no image could be predicted ({len(report['failed'])} failed); see "
                              f"{out / 'report.json'}")
    if cfg.strict and report["failed"]:
        raise PredictRunError(f"{len(report['failed'])} input(s) failed (strict=true); see {out / 'report.json'}")
    return report


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="predict")
def _hydra_main(cfg: DictConfig) -> None:
    with handle_user_errors():  # error: <message>, exit 2, also in predict.log
        predict(cfg)


def main() -> None:
    """CLI entry point: an unknown option / key is ``error: ...`` + exit 2 before Hydra creates a folder."""
    with handle_user_errors(log_file=False):
        precompose("predict", sys.argv[1:], check=check_config)
    _hydra_main()


if __name__ == "__main__":
    main()
