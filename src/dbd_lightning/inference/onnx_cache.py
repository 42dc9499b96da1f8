"""The ONNX graph of a checkpoint, exported once and cached beside it (or in a cache folder).

A released model's graph shipped in the package (:mod:`.onnx_graphs`) is used first when its
hashes match; the torch-free parts (identity, sidecars, integrity) live in :mod:`.onnx_graphs`.

Layout: ``<ckpt folder>/onnx/<ckpt stem>.<key>.onnx`` with a JSON sidecar
``<ckpt stem>.<key>.json``; ``key`` is ``dyn`` (batch, height and width dynamic) or
``<h>x<w>`` (fixed height and width, used only when the dynamic graph's outputs at
another size differ from PyTorch's). When the checkpoint folder is read-only the
files go to ``$DBD_CACHE_DIR/onnx`` (default ``~/.cache/dbd_lightning/onnx``),
named after a hash of the checkpoint's absolute path.

The sidecar records the checkpoint's identity (size, mtime, SHA-256), the ONNX
file's SHA-256 and size, the opset, the torch version and the largest difference
to PyTorch measured at export. A cached file is used only when all of them match
(a stale file: the checkpoint changed; a corrupt file: its hash does not match, or
onnxruntime cannot load it); otherwise it is exported again and replaced.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from ..utils.atomic import atomic_path
from ..utils.hashing import file_sha256
from ..utils.preflight import OutputDirError, check_writable
from ..utils.progress import slow_step
from .onnx_graphs import (  # noqa: F401  (their public home stays this module too)
    FORMAT_VERSION,
    OPSET,
    checkpoint_identity,
    default_cache_dir,
    graph_intact,
    in_package,
    read_sidecar,
    valid_released_graph,
)

log = logging.getLogger(__name__)


class LogitsGraph(nn.Module):
    """The exported function: normalised image ``(B, 3, H, W)`` -> in-focus logits ``(B, 1, H, W)``."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        return out["logits"] if isinstance(out, dict) else out


def weights_identity(net: nn.Module) -> dict:
    """For a network without a checkpoint file: the hash of its state dict (names, shapes, values)."""
    h = hashlib.sha256()
    for name, t in net.state_dict().items():
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return {"path": None, "sha256": h.hexdigest()}


def _writable(folder: Path) -> bool:
    try:
        check_writable(folder, role="ONNX cache folder")
        return True
    except OutputDirError:
        return False


def cache_location(ckpt: Path | None, identity: dict, cache_dir: Path | None = None) -> tuple[Path, str]:
    """``(folder, file stem)`` of a checkpoint's cached graphs: beside it when writable, else the cache folder.

    Released models (files inside the installed package, ``dbd_lightning.zoo``) always use the cache
    folder: the package folder is not the user's to write into.
    """
    if cache_dir is None and ckpt is not None and not in_package(ckpt) and _writable(ckpt.parent / "onnx"):
        return ckpt.parent / "onnx", ckpt.stem
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    if ckpt is not None:
        tag = hashlib.sha256(str(ckpt.resolve()).encode()).hexdigest()[:12]
        return folder, f"{ckpt.stem}-{tag}"
    return folder, f"weights-{identity['sha256'][:16]}"


def _expected(identity: dict) -> dict:
    return {"format": FORMAT_VERSION, "opset": OPSET, "torch": torch.__version__, "checkpoint": identity}


def load_valid(onnx_path: Path, identity: dict) -> dict | None:
    """The sidecar of a cached graph if it is current and intact, else ``None`` (with the reason logged)."""
    meta = read_sidecar(onnx_path)
    if meta is None:
        return None
    for key, want in _expected(identity).items():
        got = meta.get(key)
        if key == "checkpoint":  # the path may differ (a moved run folder): the content decides
            got = {k: (got or {}).get(k) for k in ("sha256",)}
            want = {"sha256": want["sha256"]}
        if got != want:
            log.info("onnx cache: %s is stale (%s changed), exporting again", onnx_path, key)
            return None
    return meta if graph_intact(onnx_path, meta) else None


def _atomic_write(path: Path, write) -> None:
    """``write(tmp)`` into a temporary file next to ``path``, then moved onto it (the shared atomic helper)."""
    with atomic_path(path) as tmp:
        write(tmp)


def export_graph(net: nn.Module, path: Path, size: Sequence[int], dynamic: bool) -> None:
    """``torch.onnx.export`` (TorchScript-based exporter) of :class:`LogitsGraph`, batch always dynamic."""
    graph = LogitsGraph(net).eval()
    example = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(0))
    axes = {0: "batch", 2: "height", 3: "width"} if dynamic else {0: "batch"}

    def write(tmp: Path) -> None:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the exporter's deprecation / tracer notes
            torch.onnx.export(graph, (example,), str(tmp), dynamo=False, opset_version=OPSET,
                              input_names=["image"], output_names=["logits"],
                              dynamic_axes={"image": axes, "logits": axes})

    _atomic_write(path, write)


def max_difference(net: nn.Module, session, size: Sequence[int], batch: int = 2, seed: int = 1) -> float:
    """Largest |sigmoid difference| between PyTorch and an onnxruntime session on random normalised input."""
    x = torch.randn(batch, 3, *size, generator=torch.Generator().manual_seed(seed))
    with torch.inference_mode():
        ref = torch.sigmoid(LogitsGraph(net).eval()(x).float())
    got = torch.sigmoid(torch.from_numpy(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]))
    return float((ref - got).abs().max())


def cached_graph(net: nn.Module, size: Sequence[int], identity: dict, folder: Path, stem: str, open_session,
                 atol: float = 1e-4, checkpoint: Path | None = None) -> tuple[object, Path, dict]:
    """An onnxruntime session of ``net`` valid at ``size``: the released graph shipped beside ``checkpoint``
    (:func:`~.onnx_graphs.valid_released_graph`), the cached one, or exported, checked and cached.

    ``open_session(path)`` builds the session (raises when the file cannot be loaded).
    The dynamic graph is tried first; it is kept when it matches PyTorch (``atol`` on the
    in-focus probability) at ``size`` and at another size, else a fixed-size graph keyed
    by ``size`` is exported. Raises ``RuntimeError`` when no graph matches.
    """
    size = tuple(int(s) for s in size)
    other = (size[0] + 32, size[1] + 64)
    keyed = folder / f"{stem}.{size[0]}x{size[1]}.onnx"
    released = valid_released_graph(checkpoint, identity.get("sha256")) if checkpoint is not None else None
    if released is not None:
        try:
            return open_session(released[0]), *released
        except Exception as exc:  # a file onnxruntime cannot load is never trusted
            log.warning("released graph: %s does not load (%s); exporting the graph instead", released[0],
                        type(exc).__name__)
    for path in (folder / f"{stem}.dyn.onnx", keyed):
        meta = load_valid(path, identity)
        if meta is None or (path == keyed) == (meta.get("dynamic") is True):
            continue
        try:
            return open_session(path), path, meta
        except Exception as exc:  # a file onnxruntime cannot load is rebuilt, never trusted
            log.info("onnx cache: %s does not load (%s), exporting again", path, type(exc).__name__)
    for dynamic in (True, False):
        path = folder / f"{stem}.dyn.onnx" if dynamic else keyed
        with slow_step(f"exporting the network's ONNX graph once and checking it against PyTorch (cached in "
                       f"{folder})"):
            export_graph(net, path, size, dynamic)
            session = open_session(path)
            diffs = {f"{size[0]}x{size[1]}": max_difference(net, session, size)}
            if dynamic:
                diffs[f"{other[0]}x{other[1]}"] = max_difference(net, session, other, batch=1)
        worst = max(diffs.values())
        if worst <= atol:
            meta = {**_expected(identity), "dynamic": dynamic, "size": None if dynamic else list(size),
                    "onnx_size": path.stat().st_size, "onnx_sha256": file_sha256(path), "max_abs_diff": diffs}
            _atomic_write(path.with_suffix(".json"), lambda tmp, m=meta: tmp.write_text(json.dumps(m, indent=2)))
            log.info("onnx cache: exported %s (max |diff| to torch %.2g)", path, worst)
            return session, path, meta
        path.unlink(missing_ok=True)
        if not dynamic or diffs[f"{size[0]}x{size[1]}"] > atol:
            raise RuntimeError(f"its ONNX graph differs from PyTorch by {worst:.3g} > {atol:g}")
        log.info("onnx cache: the dynamic graph differs from torch by %.3g at another size; exporting a %dx%d one",
                 worst, *size)
    raise AssertionError("unreachable")
