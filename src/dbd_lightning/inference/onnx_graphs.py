"""ONNX graph files and their JSON sidecars, without torch: identity, integrity, released graphs.

Every graph (:mod:`.onnx_cache` exports and caches them) has a sidecar ``<graph>.json``
recording the checkpoint it was built from (size, mtime, SHA-256), the graph file's own
SHA-256 and size, the opset and the largest difference to PyTorch measured when it was
built. A graph is trusted only when its file matches the sidecar's hash and the sidecar
names the checkpoint's content.

Released models (:mod:`dbd_lightning.zoo`) ship their graph beside the weights:
``<name>.dyn.onnx`` + ``<name>.dyn.json`` (batch, height and width dynamic), built and
checked against PyTorch when the model was released
(``python -m dbd_lightning.zoo --build-graphs``). :func:`valid_released_graph` accepts it
when the weights' and the graph's SHA-256 match the sidecar; it does not ask which torch
version runs (the graph is a function of the weights alone), so predict can use it
without importing torch. A graph that does not match is ignored and the network is
exported into the cache as for any checkpoint.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from ..utils.hashing import file_sha256

log = logging.getLogger(__name__)

OPSET = 17
FORMAT_VERSION = 1
#: the graph key of a dynamic-size graph (``<stem>.dyn.onnx``)
DYNAMIC_KEY = "dyn"
PACKAGE_DIR = Path(__file__).resolve().parent.parent


def checkpoint_identity(ckpt: Path) -> dict:
    """What a cached graph must match: the checkpoint's size, mtime and content hash."""
    st = ckpt.stat()
    return {"path": str(ckpt.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": file_sha256(ckpt)}


def default_cache_dir() -> Path:
    return Path(os.environ.get("DBD_CACHE_DIR") or Path.home() / ".cache" / "dbd_lightning") / "onnx"


def in_package(ckpt: Path | None) -> bool:
    """Whether ``ckpt`` is a file of the installed package (a released model: never written beside)."""
    return ckpt is not None and PACKAGE_DIR in Path(ckpt).resolve().parents


def read_sidecar(onnx_path: Path, what: str = "onnx cache") -> dict | None:
    """The JSON sidecar of a cached graph (``None`` when the graph or its sidecar is missing or unreadable)."""
    meta_path = onnx_path.with_suffix(".json")
    if not onnx_path.is_file() or not meta_path.is_file():
        return None
    try:
        return json.loads(meta_path.read_text())
    except (OSError, ValueError):
        log.info("%s: unreadable sidecar %s, building again", what, meta_path)
        return None


def graph_intact(onnx_path: Path, meta: dict, what: str = "onnx cache") -> bool:
    """Whether the graph file has the size and SHA-256 its sidecar recorded (else it is corrupt, logged)."""
    if onnx_path.stat().st_size != meta.get("onnx_size") or file_sha256(onnx_path) != meta.get("onnx_sha256"):
        log.info("%s: %s is corrupt (hash mismatch), building again", what, onnx_path)
        return False
    return True


def released_graph(ckpt: Path) -> Path:
    """Where a released model's shipped graph lies: ``<weights folder>/<name>.dyn.onnx``."""
    return Path(ckpt).with_name(f"{Path(ckpt).stem}.{DYNAMIC_KEY}.onnx")


def valid_released_graph(ckpt: Path | None, sha256: str | None = None) -> tuple[Path, dict] | None:
    """``(graph, sidecar)`` of the graph shipped beside a released model, when it belongs to these weights.

    ``sha256``: the weights' hash when the caller has it (else it is computed). ``None`` when
    ``ckpt`` is not a file of the package, has no shipped graph, or the graph / its sidecar
    do not match (logged: the caller then exports the graph as for any checkpoint).
    """
    if ckpt is None or not in_package(ckpt):
        return None
    path = released_graph(ckpt)
    meta = read_sidecar(path, "released graph")
    if meta is None:
        return None
    recorded = (meta.get("checkpoint") or {}).get("sha256")
    if (meta.get("format"), meta.get("opset"), meta.get("dynamic")) != (FORMAT_VERSION, OPSET, True):
        log.info("released graph: %s was built by another format / opset; exporting instead", path)
        return None
    if recorded != (sha256 or file_sha256(Path(ckpt))):
        log.warning("released graph: %s does not belong to %s (the weights' SHA-256 differs); exporting the "
                    "graph instead (reinstall the package to restore it)", path, Path(ckpt).name)
        return None
    if not graph_intact(path, meta, "released graph"):
        log.warning("released graph: %s does not match its recorded SHA-256; exporting the graph instead "
                    "(reinstall the package to restore it)", path)
        return None
    return path, meta
