"""Export a trained DBD network: ``python -m dbd_lightning.export ckpt=<run> formats=[onnx,torchscript]``.

The exported graph is :class:`ExportWrapper`: input an RGB batch ``(B, 3, H, W)``
float in ``[0, 1]`` (no ImageNet normalisation needed: the run's mean/std are
inside), output the in-focus probability ``(B, 1, H, W)`` (``output=logits``
for raw logits). Batch, height and width are dynamic by default (multiples of
32 are safe for every encoder). After export each file is run once (ONNX with
onnxruntime, TorchScript with ``torch.jit.load``) on an input of another size
than the tracing example and compared with PyTorch; ``export.json`` records the
maximum differences. No network access: the network is rebuilt from the run's
saved config with ``pretrained=false`` and the checkpoint loaded with
``weights_only=True``.

ONNX uses ``torch.onnx.export``: ``dynamo=false`` (default, the TorchScript-based
exporter, fast, needs only ``onnx``) or ``dynamo=true`` (``torch.export`` based,
needs ``onnxscript``; ``pip install -e '.[export]'``); both write one
self-contained ``.onnx`` file.

Like predict, export never overwrites a file it did not write: ``export.json``
records what it wrote (:mod:`dbd_lightning.export_output`); a user's file at a
target path stops the run before anything is written (exit 2). Every file is
written atomically; a full disk is one line (exit 2).
"""

from __future__ import annotations

from . import _env  # noqa: F401  (first: the environment defaults, before any library import)

# isort: split

import json
import logging
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from .export_output import ExportFolder
from .inference.predictor import CheckpointPredictor
from .runs.resolver import resolve_checkpoint
from .utils import key_checks as kc
from .utils.atomic import DiskFullError
from .utils.config import config_dir
from .utils.errors import ConfigError, handle_user_errors
from .utils.validate import precompose

log = logging.getLogger(__name__)

FORMATS = ("onnx", "torchscript")
#: the lowest ONNX opset torch.onnx exports; the highest is the installed torch's, checked in :func:`export`
MIN_OPSET = 7

#: conf/export.yaml's keys: type, range, choices (checked before the checkpoint is loaded or a file written)
KEY_CHECKS = {
    "formats": kc.choices(FORMATS, example="[onnx,torchscript]"),
    "image_size": kc.image_size(nullable=True),
    "dynamic": kc.flag(),
    "output": kc.choice(("probability", "logits")),
    "opset": kc.whole(MIN_OPSET, example=17),
    "dynamo": kc.flag(),
    "check": kc.flag(),
    "atol": kc.number(above=0, example=1e-4),
}


def check_config(cfg) -> None:
    """Refuse a bad value of a documented key (:data:`KEY_CHECKS`), naming it; nothing is loaded or written."""
    kc.check_keys(cfg, KEY_CHECKS, fix="Nothing was written.")


#: the torch half (:mod:`.export_formats`), loaded on first use
_FORMATS_API = ("ExportWrapper", "export_onnx", "export_torchscript", "run_onnx", "run_torchscript")


def __getattr__(name: str):
    if name in _FORMATS_API:
        from . import export_formats

        return getattr(export_formats, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def export(cfg: DictConfig) -> dict:
    """Export the checkpoint in every requested format, check each against PyTorch; returns the manifest."""
    import numpy as np
    import torch

    from .export_formats import ExportWrapper, export_onnx, export_torchscript, run_onnx, run_torchscript

    check_config(cfg)
    formats = [str(cfg.formats)] if isinstance(cfg.formats, str) else [str(f) for f in cfg.formats]
    max_opset = getattr(getattr(torch.onnx, "_constants", None), "ONNX_MAX_OPSET", None)
    if "onnx" in formats and isinstance(max_opset, int) and int(cfg.opset) > max_opset:
        raise ConfigError(f"opset={cfg.opset} is not valid: this torch exports ONNX opsets {MIN_OPSET} to {max_opset} "
                          f"(e.g. opset=17). Nothing was written.")
    out = Path(str(cfg.get("output_dir") or cfg.paths.output_dir))
    stem = str(cfg.name)
    targets = {fmt: out / (f"{stem}.onnx" if fmt == "onnx" else f"{stem}.torchscript.pt") for fmt in formats}
    folder = ExportFolder(out)  # refuses a foreign export.json and, next, a foreign file at a target
    folder.refuse_foreign(targets.values())
    run = resolve_checkpoint(str(cfg.ckpt), str(cfg.which), cfg.paths.log_dir)
    pred = CheckpointPredictor.from_run(run, {"image_size": cfg.get("image_size")}, device="cpu")
    model = ExportWrapper(pred.net.cpu(), pred.mean.view(-1).tolist(), pred.std.view(-1).tolist(),
                          output=str(cfg.output)).eval()
    h, w = pred.image_size
    g = torch.Generator().manual_seed(0)
    example = torch.rand(1, 3, h, w, generator=g)
    manifest: dict = {
        "checkpoint": str(run.ckpt), "config": str(run.config_file),
        "input": {"name": "rgb", "shape": ["batch", 3, "height", "width"] if cfg.dynamic else [1, 3, h, w],
                  "range": "RGB float in [0, 1] (normalisation is inside the graph)"},
        "output": {"name": "focus", "shape": ["batch", 1, "height", "width"] if cfg.dynamic else [1, 1, h, w],
                   "meaning": "in-focus probability (1 = in focus)" if cfg.output == "probability" else "in-focus logits"},
        "trained_input_size": [h, w], "mean": model.mean.view(-1).tolist(), "std": model.std.view(-1).tolist(),
        "files": {}, "max_abs_diff": {},
    }
    check_size = (h + 32, w + 64) if cfg.dynamic else (h, w)
    x = torch.rand(2 if cfg.dynamic else 1, 3, *check_size, generator=g)
    with torch.no_grad():
        reference = model(x).numpy()
    folder.announce(targets.values(), manifest)
    for fmt in formats:
        try:
            if fmt == "onnx":
                path = export_onnx(model, example, targets[fmt], bool(cfg.dynamic), int(cfg.opset),
                                   bool(cfg.dynamo))
                runner = run_onnx
            else:
                path = export_torchscript(model, example, targets[fmt])
                runner = run_torchscript
        except DiskFullError:
            raise
        except ImportError as exc:
            raise ConfigError(f"{fmt} export needs a package that is not installed: {exc}") from exc
        except Exception as exc:
            raise RuntimeError(
                f"{fmt} export of {type(model.net).__name__} ({run.ckpt}) failed: {type(exc).__name__}: "
                f"{str(exc)[:500]}" + ("" if fmt != "onnx" or cfg.dynamo else " (try dynamo=true)")
            ) from exc
        manifest["files"][fmt] = str(path)
        if cfg.check:
            diff = float(np.abs(runner(path, x.numpy()) - reference).max())
            manifest["max_abs_diff"][fmt] = diff
            if diff > float(cfg.atol):
                raise RuntimeError(f"{fmt} export {path} differs from PyTorch by {diff:.3g} > atol={cfg.atol}")
        log.info("exported %s -> %s", fmt, path)
    folder.write(manifest)
    print(json.dumps(manifest, indent=2), flush=True)
    return manifest


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="export")
def _hydra_main(cfg: DictConfig) -> None:
    with handle_user_errors():  # error: <message>, exit 2, also in export.log
        export(cfg)


def main() -> None:
    """CLI entry point: an unknown option / key is ``error: ...`` + exit 2 before Hydra creates a folder."""
    with handle_user_errors(log_file=False):
        precompose("export", sys.argv[1:], check=check_config)
    _hydra_main()


if __name__ == "__main__":
    main()
