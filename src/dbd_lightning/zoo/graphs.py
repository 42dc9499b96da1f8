"""The ONNX graph shipped beside each released model (``<name>.dyn.onnx`` + ``<name>.dyn.json``).

Why shipped rather than exported on first use: exporting needs torch and the network
(seconds), while a shipped graph lets ``predict ckpt=zoo:<name>`` run in onnxruntime without
importing torch at all (:mod:`dbd_lightning.inference.onnx_predictor`). The graph is checked
against PyTorch here, when it is built (largest |probability difference| at two input sizes,
recorded in the sidecar), and verified by SHA-256 (its own and the weights') wherever it is
used (:func:`~dbd_lightning.inference.onnx_graphs.valid_released_graph`); one that does not
match is ignored and the graph is exported into the cache as for any checkpoint.

``python -m dbd_lightning.zoo --build-graphs`` (needs ``onnx``: ``pip install -e .[export]``)
rebuilds them after a release.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..inference.onnx_graphs import FORMAT_VERSION, OPSET, checkpoint_identity, released_graph
from ..runs.released import ZooCheckpoint
from ..utils.hashing import file_sha256

#: largest accepted |probability difference| to PyTorch (as the cache's)
ATOL = 1e-4


def build_released_graph(entry: ZooCheckpoint) -> Path:
    """Export, check and write the dynamic-size graph of a released model beside its weights."""
    from ..inference.predictor import CheckpointPredictor
    from ..inference.settings import InferenceSettings

    pred = CheckpointPredictor.from_run(entry, InferenceSettings.papers_protocol(), device="cpu", backend="torch")
    return write_released_graph(pred.net, entry.ckpt, pred.image_size or (320, 320))


def write_released_graph(net, ckpt: Path, size: tuple[int, int]) -> Path:
    """Export ``net`` (the weights of ``ckpt``) as ``<ckpt stem>.dyn.onnx`` beside ``ckpt``, check it against
    PyTorch at ``size`` and at another size, and write its sidecar; raises when it differs by more than
    :data:`ATOL` (the graph is then removed)."""
    import onnxruntime as ort
    import torch

    from ..inference.onnx_cache import _atomic_write, export_graph, max_difference

    size = (int(size[0]), int(size[1]))
    other = (size[0] + 32, size[1] + 64)
    path = released_graph(ckpt)
    export_graph(net, path, size, dynamic=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    diffs = {f"{size[0]}x{size[1]}": max_difference(net, session, size),
             f"{other[0]}x{other[1]}": max_difference(net, session, other, batch=1)}
    if max(diffs.values()) > ATOL:
        path.unlink()
        raise RuntimeError(f"the ONNX graph of {ckpt.name} differs from PyTorch by {max(diffs.values()):.3g}")
    identity = checkpoint_identity(ckpt)
    identity = {"file": ckpt.name, "size": identity["size"], "sha256": identity["sha256"]}
    meta = {"format": FORMAT_VERSION, "opset": OPSET, "torch": torch.__version__, "checkpoint": identity,
            "dynamic": True, "size": None, "onnx_size": path.stat().st_size, "onnx_sha256": file_sha256(path),
            "max_abs_diff": diffs}
    _atomic_write(path.with_suffix(".json"), lambda tmp: tmp.write_text(json.dumps(meta, indent=2) + "\n"))
    return path
