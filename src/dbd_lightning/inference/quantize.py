"""``backend=onnxruntime_int8``: the cached float32 ONNX graph with its decoder convolutions in int8.

An opt-in, approximate CPU backend (``auto`` never picks it). onnxruntime's static
quantization (``onnxruntime.quantization.quantize_static``, QDQ format, per-channel int8
weights, uint8 activations) is applied to the fixed-size float32 graph that
:mod:`.onnx_cache` exported and checked against PyTorch. Measured on the first released
DFFNet-Lite0 (``make bench ARGS="--cases backends_forward_lite"``): quantizing every
convolution moved the real-sample mean MAE from 0.103 to 0.119, so by default only the
convolutions outside the encoder are quantized and the network's last convolution stays
float32 (``Int8Settings.quantize_encoder`` / ``keep_last_conv``): that keeps the real-sample
metrics within 0.003 and halves onnxruntime's time, since DFFNet's decoder carries ~5x
the encoder's FLOPs at 320 px.

Calibration uses photographic synthetic scenes of the *training* photo split
(:mod:`dbd_lightning.data.synthetic.photographic`), never a test photograph. After
quantization the graph is compared with the float32 graph on scenes of the *validation*
split; when the mean |probability difference| exceeds ``Int8Settings.max_mean_abs_diff``
the int8 graph is not used (the float32 graph runs, with one log line). The files are
cached beside the float32 graph (``<stem>.<h>x<w>.int8.onnx`` + JSON sidecar keyed by the
float32 graph's hash and the settings); a stale or corrupt file is rebuilt, never trusted.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..utils.hashing import file_sha256

log = logging.getLogger(__name__)

INT8_FORMAT_VERSION = 1


@dataclass(frozen=True)
class Int8Settings:
    """How the int8 graph is built (``int8:`` block of ``conf/predict.yaml`` / ``conf/eval.yaml``).

    Attributes:
        calibration_images: photographic training-split scenes that set the activation ranges.
        check_images: validation-split scenes on which int8 is compared with float32.
        percentile: activation range = this percentile of the calibration activations.
        quantize_encoder: also quantize the encoder's convolutions (faster, less faithful).
        keep_last_conv: keep the convolution that writes the logits in float32.
        max_mean_abs_diff: refuse the int8 graph above this mean |probability difference|.
        seed: scene seed of the calibration (the check uses ``seed + 1``).
        calibration_chunk: calibration images whose activations are held at once; onnxruntime's
            calibrator otherwise keeps every intermediate tensor of all of them (issue 26: 4.0 GB for
            16 images at 320 px). The histograms are merged chunk by chunk (the largest divisor of
            ``calibration_images`` not above this).
        build_fixed_mib, build_bytes_per_pixel: the build's memory beyond the loaded predictor, a fixed part
            plus a part per pixel of each calibration image held at once (measured at 320 px with chunks of
            1, 4 and 8: 941 MiB + 176 MiB per image, i.e. ~1800 bytes per pixel;
            ``experiments/predict_memory.json``). Before building, ``build_fixed_mib MiB + chunk x h x w x
            build_bytes_per_pixel`` is compared with the memory available; above it, no int8 graph is built
            and the float32 graph runs (one warning naming the fix). ``build_bytes_per_pixel=0`` turns the
            check off. Neither is part of the cache key.
    """

    calibration_images: int = 16
    check_images: int = 4
    percentile: float = 99.99
    quantize_encoder: bool = False
    keep_last_conv: bool = True
    max_mean_abs_diff: float = 0.05
    seed: int = 7
    calibration_chunk: int = 4
    build_fixed_mib: float = 1000.0
    build_bytes_per_pixel: float = 1900.0

    @classmethod
    def from_mapping(cls, values) -> Int8Settings:
        """Settings from a config mapping; a wrong key, type or range raises ``ValueError`` naming it."""
        values = dict(values or {})
        unknown = sorted(set(values) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"int8: unknown key(s) {unknown}; known: {sorted(cls.__dataclass_fields__)}")
        out = {}
        for key, value in values.items():
            kind = type(cls.__dataclass_fields__[key].default)
            ok = isinstance(value, bool) if kind is bool else (
                isinstance(value, int | float) and not isinstance(value, bool) and (kind is float or value == int(value)))
            if not ok:
                wanted = {bool: "true or false", int: "an integer", float: "a number"}[kind]
                raise ValueError(f"int8.{key}={value!r} must be {wanted}")
            out[key] = kind(value)
        settings = cls(**out)
        limits = {"calibration_images": settings.calibration_images >= 1, "check_images": settings.check_images >= 1,
                  "calibration_chunk": settings.calibration_chunk >= 1,
                  "build_fixed_mib": settings.build_fixed_mib >= 0,
                  "build_bytes_per_pixel": settings.build_bytes_per_pixel >= 0,
                  "percentile": 0 < settings.percentile <= 100, "max_mean_abs_diff": settings.max_mean_abs_diff >= 0}
        bad = [k for k, fine in limits.items() if not fine]
        if bad:
            raise ValueError(f"int8.{bad[0]}={getattr(settings, bad[0])!r} is out of range (images >= 1, "
                             "0 < percentile <= 100, max_mean_abs_diff >= 0, build_* >= 0)")
        return settings


def calibration_stride(n: int, chunk: int) -> int:
    """The largest divisor of ``n`` not above ``chunk`` (onnxruntime's strided calibration needs one)."""
    return max(d for d in range(1, max(1, min(n, chunk)) + 1) if n % d == 0)


class Int8BuildMemoryError(MemoryError):
    """Building the int8 graph would need more memory than is available (the float32 graph runs instead)."""


CACHE_IRRELEVANT = ("build_fixed_mib", "build_bytes_per_pixel")  # settings that do not change the int8 graph


def build_memory_need(size: Sequence[int], settings: Int8Settings) -> int:
    """Bytes the int8 build needs beyond the loaded predictor: ``settings.build_fixed_mib`` MiB plus the
    calibration images held at once (:func:`calibration_stride`) x their pixels x ``settings.build_bytes_per_pixel``."""
    h, w = (int(v) for v in size)
    chunk = calibration_stride(settings.calibration_images, settings.calibration_chunk)
    return int(settings.build_fixed_mib * 2**20 + chunk * h * w * settings.build_bytes_per_pixel)


def check_build_memory(size: Sequence[int], settings: Int8Settings, available: int | None) -> int:
    """The build's estimated need; :class:`Int8BuildMemoryError` naming the keys when it exceeds ``available``."""
    need = build_memory_need(size, settings)
    if settings.build_bytes_per_pixel > 0 and available is not None and need > available:
        h, w = (int(v) for v in size)
        chunk = calibration_stride(settings.calibration_images, settings.calibration_chunk)
        one = need - (chunk - 1) * h * w * settings.build_bytes_per_pixel  # the need with a chunk of 1
        gib = 2**30
        raise Int8BuildMemoryError(
            f"building the int8 graph for {h}x{w} needs about {need / gib:.2f} GiB (int8.build_fixed_mib="
            f"{settings.build_fixed_mib:g} MiB + {chunk} calibration images held at once, int8.calibration_chunk, x "
            f"{h}x{w} px x int8.build_bytes_per_pixel={settings.build_bytes_per_pixel:g}) but only "
            f"{available / gib:.2f} GiB is available. Free memory, or "
            f"lower int8.calibration_chunk (1 needs about {one / gib:.2f} GiB), or use backend=onnxruntime")
    return need


def scene_batches(split: str, n: int, size: Sequence[int], mean: Sequence[float], std: Sequence[float],
                  seed: int) -> list[np.ndarray]:
    """``n`` normalised ``(1, 3, h, w)`` float32 images of photographic scenes from one photo split."""
    from ..data.synthetic.dataset import SyntheticDefocusDataset

    ds = SyntheticDefocusDataset(length=n, seed=seed, preset="photographic", size=tuple(int(s) for s in size),
                                 photo_split=split)
    m, s = np.asarray(mean, np.float32), np.asarray(std, np.float32)
    out = []
    for i in range(n):
        img = np.asarray(ds[i]["image"], np.float32)
        img = img / 255.0 if img.max() > 1.5 else img
        out.append(((img - m) / s).transpose(2, 0, 1)[None].astype(np.float32))
    return out


def quantizable_convs(onnx_path: Path, settings: Int8Settings) -> tuple[list[str], list[str]]:
    """``(quantized, kept float32)`` Conv node names of the graph under ``settings``."""
    import onnx

    convs = [n.name for n in onnx.load(str(onnx_path)).graph.node if n.op_type == "Conv"]
    keep = [] if settings.quantize_encoder else [n for n in convs if "/encoder/" in n]
    if settings.keep_last_conv and convs and convs[-1] not in keep:
        keep.append(convs[-1])
    return [n for n in convs if n not in keep], keep


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def agreement(fp32_session, int8_session, images: list[np.ndarray]) -> dict[str, float]:
    """Mean / max |probability difference| and the fraction of pixels whose 0.5 decision flips."""
    name = fp32_session.get_inputs()[0].name
    mean_abs, max_abs, flips = [], [], []
    for x in images:
        a = _sigmoid(fp32_session.run(None, {name: x})[0])
        b = _sigmoid(int8_session.run(None, {name: x})[0])
        mean_abs.append(float(np.abs(a - b).mean()))
        max_abs.append(float(np.abs(a - b).max()))
        flips.append(float(((a > 0.5) != (b > 0.5)).mean()))
    return {"mean_abs_diff": float(np.mean(mean_abs)), "max_abs_diff": float(np.max(max_abs)),
            "decision_flip_fraction": float(np.mean(flips))}


def _valid_int8(path: Path, expected: dict) -> dict | None:
    from .onnx_cache import graph_intact, read_sidecar

    meta = read_sidecar(path, "int8 cache")
    if meta is None:
        return None
    if any(meta.get(k) != v for k, v in expected.items()):
        log.info("int8 cache: %s is stale, quantizing again", path)
        return None
    return meta if graph_intact(path, meta, "int8 cache") else None


def int8_graph(fp32_path: Path, fp32_session, size: Sequence[int], mean: Sequence[float], std: Sequence[float],
               settings: Int8Settings, open_session, folder: Path | None = None) -> tuple[object | None, Path, dict]:
    """``(session or None, path, sidecar)`` of the int8 graph built from the fixed-size float32 graph.

    Written into ``folder`` (default: beside the float32 graph; a released model's graph lies in the
    package, so its int8 graph goes to the cache folder).

    ``None`` when the int8 graph disagrees with float32 by more than ``settings.max_mean_abs_diff``.
    """
    from .onnx_cache import _atomic_write

    h, w = (int(s) for s in size)
    key_settings = {k: v for k, v in asdict(settings).items() if k not in CACHE_IRRELEVANT}
    path = (Path(folder) if folder is not None else fp32_path.parent) / (
        fp32_path.name.replace(".onnx", "") + f".{h}x{w}.int8.onnx")
    expected = {"format": INT8_FORMAT_VERSION, "float32_sha256": file_sha256(fp32_path), "size": [h, w],
                "settings": key_settings, "mean": [float(v) for v in mean], "std": [float(v) for v in std]}
    meta = _valid_int8(path, expected)
    if meta is not None:
        try:
            return (open_session(path) if meta["accepted"] else None), path, meta
        except Exception as exc:  # a file onnxruntime cannot load is rebuilt
            log.info("int8 cache: %s does not load (%s), quantizing again", path, type(exc).__name__)
    from .image_memory import available_bytes

    check_build_memory((h, w), settings, available_bytes())
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    calib = scene_batches("train", settings.calibration_images, (h, w), mean, std, settings.seed)
    check = scene_batches("val", settings.check_images, (h, w), mean, std, settings.seed + 1)
    name = fp32_session.get_inputs()[0].name

    class _Reader(CalibrationDataReader):  # len + set_range: quantize_static calibrates chunk by chunk
        def __init__(self) -> None:
            self.items = iter(calib)

        def __len__(self) -> int:
            return len(calib)

        def set_range(self, start_index: int, end_index: int) -> None:
            self.items = iter(calib[start_index:end_index])

        def get_next(self):
            x = next(self.items, None)
            return None if x is None else {name: x}

    chunk = calibration_stride(len(calib), settings.calibration_chunk)

    split: dict[str, list[str]] = {}  # the Conv nodes quantized / kept, read once from the graph quantized

    def write(tmp: Path) -> None:
        import onnx

        fixed, pre = tmp.with_name(tmp.name + ".fixed.onnx"), tmp.with_name(tmp.name + ".pre.onnx")
        try:
            model = onnx.load(str(fp32_path))  # height and width fixed (batch stays dynamic): static shapes
            for graph_io in (*model.graph.input, *model.graph.output):
                dims = graph_io.type.tensor_type.shape.dim
                dims[2].dim_value, dims[3].dim_value = h, w
            onnx.save(model, str(fixed))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                logging.disable(logging.INFO)  # onnxruntime.quantization logs every copied bias on the root logger
                quant_pre_process(str(fixed), str(pre), skip_symbolic_shape=True)
                quantized, keep = quantizable_convs(pre, settings)
                split.update(quantized=quantized, kept=keep)
                common = dict(quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
                              weight_type=QuantType.QInt8, op_types_to_quantize=["Conv"], nodes_to_exclude=keep)
                try:
                    quantize_static(str(pre), str(tmp), _Reader(), calibrate_method=CalibrationMethod.Percentile,
                                    extra_options={"CalibPercentile": float(settings.percentile),
                                                   "CalibStridedMinMax": chunk}, **common)
                except ValueError as exc:  # a constant activation has no histogram: min / max ranges instead
                    log.info("int8: percentile calibration failed (%s); using min / max ranges", exc)
                    quantize_static(str(pre), str(tmp), _Reader(), calibrate_method=CalibrationMethod.MinMax,
                                    extra_options={"CalibStridedMinMax": chunk}, **common)
        finally:
            logging.disable(logging.NOTSET)
            fixed.unlink(missing_ok=True)
            pre.unlink(missing_ok=True)

    from ..utils.progress import slow_step

    with slow_step(f"quantizing the ONNX graph to int8 once and checking it on validation scenes (cached in "
                   f"{path.parent})"):
        _atomic_write(path, write)
        session = open_session(path)
        measured = agreement(fp32_session, session, check)
    quantized, kept = split["quantized"], split["kept"]
    accepted = measured["mean_abs_diff"] <= settings.max_mean_abs_diff
    meta = {**expected, **measured, "accepted": accepted, "quantized_convs": len(quantized),
            "float32_convs": len(kept), "onnx_size": path.stat().st_size, "onnx_sha256": file_sha256(path)}
    _atomic_write(path.with_suffix(".json"), lambda tmp: tmp.write_text(json.dumps(meta, indent=2)))
    log.info("int8 cache: quantized %d of %d convolutions into %s (validation scenes: mean |diff| %.3g, "
             "decisions flipped %.2g%%)", len(quantized), len(quantized) + len(kept), path,
             measured["mean_abs_diff"], 100 * measured["decision_flip_fraction"])
    return (session if accepted else None), path, meta
