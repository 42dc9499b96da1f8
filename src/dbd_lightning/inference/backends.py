"""``backend=torch | onnxruntime | auto``: what runs the network inside a predictor.

Interface (all a predictor needs)::

    backend.run(x) -> logits

``x``: the normalised image batch ``(B, 3, H, W)`` float32 on the predictor's
device; ``logits``: float32 ``(B, 1, H, W)`` in-focus logits on the same device.

* :class:`TorchBackend`: eager PyTorch under ``torch.inference_mode``, on a copy of
  the network with inference-only rewrites that keep the outputs (the trained network
  and its checkpoint keys are untouched): BatchNorm folded into the conv before it
  (:mod:`.fold_bn`) and channels-last memory format on CPU.
* :class:`OnnxRuntimeBackend`: the network's ONNX graph (shipped with a released model, or
  exported once per checkpoint and input size, cached, :mod:`.onnx_cache`) in onnxruntime on CPU, with
  as many intra-op threads as torch uses. A network that cannot be exported (or whose
  graph differs from PyTorch by more than 1e-4) runs in torch instead, with one log
  line saying why.
* :class:`OnnxRuntimeInt8Backend` (``onnxruntime_int8``, opt-in): the same graph with its
  decoder convolutions quantized to int8 (:mod:`.quantize`); approximate (its agreement
  with float32 is measured when it is built and recorded beside it), never chosen by ``auto``.
* ``auto``: onnxruntime on CPU when it (and onnx, which writes the graph) is installed, as it is by a
  plain install; torch on GPU. Without them ``auto`` runs torch and says so once, in one line with the
  ``pip install`` that brings the fast path.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Sequence
from importlib import import_module, metadata
from pathlib import Path

import torch
from torch import nn

from ..utils.errors import UserError
from .fold_bn import fold_batchnorm
from .onnx_cache import cache_location, cached_graph, checkpoint_identity, weights_identity

log = logging.getLogger(__name__)

BACKENDS = ("torch", "onnxruntime", "onnxruntime_int8", "auto")
#: the fast CPU path: the runtime, and the package torch.onnx.export writes the graph with
FAST_PATH = ("onnxruntime", "onnx")
_slow_path_noted = False  # backend=auto without the fast path says so once per process


class BackendChoiceError(UserError, ValueError):
    """A ``backend=`` value that is not one of :data:`BACKENDS` (one line naming them)."""


class BackendUnavailableError(UserError, RuntimeError):
    """``backend=onnxruntime`` without onnxruntime installed (the message is one line with the fix)."""


def missing_fast_path() -> list[str]:
    """The modules of :data:`FAST_PATH` that do not import here (empty: ``backend=auto`` can take it)."""
    missing = []
    for module in FAST_PATH:
        try:
            import_module(module)
        except ImportError:
            missing.append(module)
    return missing


def onnxruntime_available() -> bool:
    return not missing_fast_path()


def fast_path_pip(modules: Sequence[str] = FAST_PATH) -> str:
    """``pip install`` of ``modules`` at the ranges this package declares (read from its installed metadata)."""
    try:
        declared = [r.split(";")[0].strip() for r in metadata.requires("dbd_lightning") or [] if ";" not in r]
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        declared = []
    specs = {re.split(r"[<>=!~ \[]", r, maxsplit=1)[0].lower(): r for r in declared}
    return "pip install " + " ".join(f"'{specs[m]}'" if m in specs else m for m in modules)


def _note_slow_path(missing: list[str]) -> None:
    global _slow_path_noted
    if not _slow_path_noted:
        _slow_path_noted = True
        log.warning("backend=auto: %s not installed, so the network runs in torch on the CPU (the slow path); "
                    "for the fast path: %s", " and ".join(missing) + (" is" if len(missing) == 1 else " are"),
                    fast_path_pip(missing))


def resolve_backend(name: str, device: torch.device | str) -> str:
    """``torch`` or ``onnxruntime`` for a requested backend on ``device``."""
    name = str(name)
    if name not in BACKENDS:
        raise BackendChoiceError(f"backend must be one of {list(BACKENDS)}, got {name!r}")
    device = torch.device(device)
    if name == "auto":
        if device.type != "cpu":
            return "torch"
        missing = missing_fast_path()
        if missing:
            _note_slow_path(missing)
            return "torch"
        return "onnxruntime"
    if name.startswith("onnxruntime"):
        missing = missing_fast_path()
        if missing:
            raise BackendUnavailableError(f"backend={name} needs {' and '.join(missing)}: {fast_path_pip(missing)} "
                                          "(or use backend=torch)")
    return name


def note_pipeline_backend(name: str, pipeline: str | None) -> None:
    """``model=<pipeline>`` (a non-learned pipeline, not a checkpoint) always runs in torch: one line when
    another backend was asked."""
    if str(name).startswith("onnxruntime"):
        log.warning("backend=%s: the pipeline model=%s runs in torch (only ckpt= networks are exported "
                    "to ONNX)", name, pipeline or "<pipeline>")


class TorchBackend:
    """Eager PyTorch under ``torch.inference_mode`` on an inference-only copy of the network.

    The rewrites keep the outputs (checked) and never touch the trained network
    (weights, state-dict keys); each was measured in ``make bench``
    (``backends_forward_resnest101e``) and kept because it pays on CPU:

    * ``fold_bn``: BatchNorm folded into the preceding conv (:mod:`.fold_bn`);
    * ``channels_last``: the network and its input in NHWC memory format (oneDNN's
      native layout on CPU; CPU only, CUDA keeps the trained layout).

    Args:
        net: the trained network (``forward`` returns ``{"logits": ...}``).
        device: where it runs.
        amp: autocast on CUDA.
        fold_bn / channels_last: the rewrites above.
        example_size: input size of the folding check.
    """

    name = "torch"

    def __init__(self, net: nn.Module, device: torch.device | str = "cpu", amp: bool = False, fold_bn: bool = True,
                 channels_last: bool = True, example_size: Sequence[int] = (64, 64)) -> None:
        self.device = torch.device(device)
        self.amp = amp and self.device.type == "cuda"
        self.net = net.eval()
        self.folded = 0
        if fold_bn:
            example = torch.randn(1, 3, *example_size, generator=torch.Generator().manual_seed(0)).to(self.device)
            self.net, self.folded, _ = fold_batchnorm(self.net, example)
        self.channels_last = channels_last and self.device.type == "cpu"
        if self.channels_last:
            if self.net is net:  # never change the trained network's memory format in place
                self.net = copy.deepcopy(net)
            self.net.to(memory_format=torch.channels_last)

    @torch.inference_mode()
    def run(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, enabled=self.amp):
            return self.net(x)["logits"].float().contiguous()


class OnnxRuntimeBackend:
    """The network's cached ONNX graph in onnxruntime (CPU), intra-op threads = ``torch.get_num_threads()``.

    Args:
        net: the network to export (eval mode; never modified).
        input_size: the ``(h, w)`` the predictor feeds (the graph is checked there);
            ``None`` = taken from the first batch.
        checkpoint: the checkpoint file the weights come from (cache key and folder);
            ``None`` = keyed by a hash of the weights, cached in ``cache_dir``.
        cache_dir: force the cache folder (default: beside the checkpoint, else
            ``$DBD_CACHE_DIR/onnx`` or ``~/.cache/dbd_lightning/onnx``).
        threads: intra-op threads (default: torch's).
    """

    name = "onnxruntime"

    def __init__(self, net: nn.Module, input_size: Sequence[int] | None = None, checkpoint: str | Path | None = None,
                 cache_dir: str | Path | None = None, threads: int | None = None, device: torch.device | str = "cpu",
                 atol: float = 1e-4) -> None:
        import onnxruntime as ort

        self.net = net.eval()
        self.device = torch.device(device)
        self.checkpoint = Path(checkpoint) if checkpoint else None
        self.identity = checkpoint_identity(self.checkpoint) if self.checkpoint else weights_identity(net)
        self.folder, self.stem = cache_location(self.checkpoint, self.identity,
                                                Path(cache_dir) if cache_dir else None)
        self.options = ort.SessionOptions()
        self.options.intra_op_num_threads = int(threads or torch.get_num_threads())
        self.options.inter_op_num_threads = 1
        self.options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.atol = atol
        self.sessions: dict[tuple[int, int] | None, object] = {}  # None = the dynamic graph
        self.path: Path | None = None
        if input_size:
            self._session((int(input_size[0]), int(input_size[1])))

    def _open(self, path: Path):
        import onnxruntime as ort

        return ort.InferenceSession(str(path), self.options, providers=["CPUExecutionProvider"])

    def _session(self, size: tuple[int, int]):
        if None in self.sessions:
            return self.sessions[None]
        if size not in self.sessions:
            session, self.path, meta = cached_graph(self.net, size, self.identity, self.folder, self.stem,
                                                    self._open, self.atol, checkpoint=self.checkpoint)
            self.sessions[None if meta.get("dynamic") else size] = session
            return session
        return self.sessions[size]

    def run(self, x: torch.Tensor) -> torch.Tensor:
        session = self._session((int(x.shape[-2]), int(x.shape[-1])))
        feed = x.detach().to("cpu", torch.float32).contiguous().numpy()
        out = session.run(None, {"image": feed})[0]
        return torch.from_numpy(out).to(x.device)


class OnnxRuntimeInt8Backend(OnnxRuntimeBackend):
    """The float32 graph of :class:`OnnxRuntimeBackend`, quantized per input size (:mod:`.quantize`).

    Args (besides :class:`OnnxRuntimeBackend`'s):
        mean / std: the predictor's input normalisation (the calibration scenes are normalised with it).
        int8: :class:`~.quantize.Int8Settings` or a mapping of its fields (``int8:`` in the configs).
    """

    name = "onnxruntime_int8"

    def __init__(self, net: nn.Module, input_size: Sequence[int] | None = None, checkpoint: str | Path | None = None,
                 cache_dir: str | Path | None = None, threads: int | None = None, device: torch.device | str = "cpu",
                 atol: float = 1e-4, mean: Sequence[float] = (0.485, 0.456, 0.406),
                 std: Sequence[float] = (0.229, 0.224, 0.225), int8=None) -> None:
        from .quantize import Int8Settings

        self.int8 = int8 if isinstance(int8, Int8Settings) else Int8Settings.from_mapping(int8)
        self.mean, self.std = tuple(mean), tuple(std)
        self.int8_sessions: dict[tuple[int, int], object] = {}
        self.int8_meta: dict[tuple[int, int], dict] = {}
        super().__init__(net, input_size=input_size, checkpoint=checkpoint, cache_dir=cache_dir, threads=threads,
                         device=device, atol=atol)

    def _session(self, size: tuple[int, int]):
        if size not in self.int8_sessions:
            from .quantize import Int8BuildMemoryError, int8_graph

            fp32 = super()._session(size)
            try:
                session, _, meta = int8_graph(self.path, fp32, size, self.mean, self.std, self.int8, self._open,
                                              folder=self.folder)
            except Int8BuildMemoryError as exc:  # checked before building: nothing was written
                log.warning("backend=onnxruntime_int8: %s; using the float32 graph (exact maps, no int8 speed-up)", exc)
                session, meta = None, {"accepted": False, "error": f"{type(exc).__name__}: {exc}"}
            except Exception as exc:  # quantization failed: the float32 graph gives the exact maps
                log.warning("backend=onnxruntime_int8: quantization failed (%s: %s); using the float32 graph",
                            type(exc).__name__, str(exc).splitlines()[0][:200] if str(exc) else "")
                session, meta = None, {"accepted": False, "error": f"{type(exc).__name__}: {exc}"}
            if session is None and "error" not in meta:
                log.warning("backend=onnxruntime_int8: the int8 graph differs from float32 by a mean %.3g > "
                            "int8.max_mean_abs_diff=%g on validation scenes; using the float32 graph",
                            meta["mean_abs_diff"], self.int8.max_mean_abs_diff)
            self.int8_sessions[size], self.int8_meta[size] = session or fp32, meta
        return self.int8_sessions[size]


def make_backend(name: str, net: nn.Module, device: torch.device | str = "cpu", amp: bool = False,
                 input_size: Sequence[int] | None = None, checkpoint: str | Path | None = None,
                 cache_dir: str | Path | None = None, mean: Sequence[float] = (0.485, 0.456, 0.406),
                 std: Sequence[float] = (0.229, 0.224, 0.225), int8=None) -> TorchBackend | OnnxRuntimeBackend:
    """The backend ``name`` (``torch | onnxruntime | auto``) for ``net`` on ``device``.

    ``onnxruntime_int8`` also takes the predictor's ``mean`` / ``std`` and the ``int8`` settings.
    ``onnxruntime`` for a network that does not export (or does not match PyTorch within
    1e-4) falls back to torch with one log line; without onnxruntime installed,
    ``backend=onnxruntime`` raises :class:`BackendUnavailableError`.
    """
    chosen = resolve_backend(name, device)
    if chosen.startswith("onnxruntime"):
        if torch.device(device).type != "cpu":
            log.warning("backend=onnxruntime runs on the CPU; the network's device %s is not used", device)
        try:
            if chosen == "onnxruntime_int8":
                return OnnxRuntimeInt8Backend(net, input_size=input_size, checkpoint=checkpoint,
                                              cache_dir=cache_dir, device=device, mean=mean, std=std, int8=int8)
            return OnnxRuntimeBackend(net, input_size=input_size, checkpoint=checkpoint, cache_dir=cache_dir,
                                      device=device)
        except Exception as exc:  # an export failure must not stop a prediction: torch gives the same maps
            reason = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
            log.warning("backend=%s: %s does not run in onnxruntime (%s: %s); using torch",
                        name, type(net).__name__, type(exc).__name__, reason)
    return TorchBackend(net, device=device, amp=amp)
