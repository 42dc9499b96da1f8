"""Reuse freed heap memory inside a block (glibc): no page faults for large CPU temporaries.

glibc serves every allocation above its mmap threshold (at most 32 MiB) with a fresh
``mmap`` and unmaps it on free, so each large torch temporary (a 400x400x64 float map is
40 MiB) is zero-filled page by page by the kernel again. In the dense Karaali networks that
was ~2 GB of page faults per 360x360 image: a quarter of the process CPU time was system
time. Inside :func:`reuse_freed_memory` large blocks come from the heap and stay there
when freed (``M_MMAP_MAX = 0``, a large ``M_TRIM_THRESHOLD``), so the next temporary of the
same size reuses the pages; on exit the settings go back and the heap is trimmed
(``malloc_trim``). Other platforms / C libraries: a no-op.

Side effect: explicit ``mallopt`` calls switch off glibc's dynamic mmap threshold for the rest
of the process (large blocks then always use ``mmap``, as they do by default above 32 MiB).
"""

from __future__ import annotations

import contextlib
import ctypes
import sys
import threading
from collections.abc import Iterator

__all__ = ["reuse_freed_memory", "reuse_freed_memory_in_worker"]

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_MAX = -1, -2, -4
#: glibc's defaults, restored on exit
_DEFAULTS = {_M_MMAP_MAX: 65536, _M_TRIM_THRESHOLD: 128 * 1024, _M_TOP_PAD: 128 * 1024}
_REUSE = {_M_MMAP_MAX: 0, _M_TRIM_THRESHOLD: 1 << 30, _M_TOP_PAD: 64 << 20}
_lock = threading.Lock()
_depth = 0
_libc: ctypes.CDLL | None | bool = None
_worker_block: contextlib.AbstractContextManager | None = None


def _glibc() -> ctypes.CDLL | None:
    global _libc
    if _libc is None:
        _libc = False
        if sys.platform.startswith("linux"):
            try:
                lib = ctypes.CDLL(None)
                if hasattr(lib, "gnu_get_libc_version"):  # glibc only (musl: other mallopt semantics)
                    lib.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
                    lib.malloc_trim.argtypes = [ctypes.c_size_t]
                    _libc = lib
            except (OSError, AttributeError):
                pass
    return _libc or None


def _set(lib: ctypes.CDLL, params: dict[int, int]) -> None:
    for k, v in params.items():
        lib.mallopt(k, v)


@contextlib.contextmanager
def reuse_freed_memory(enabled: bool = True) -> Iterator[None]:
    """Context manager: inside it, freed large blocks stay in the heap for reuse (nestable, thread-safe)."""
    global _depth
    lib = _glibc() if enabled else None
    if lib is None:
        yield
        return
    with _lock:
        if _depth == 0:
            _set(lib, _REUSE)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _set(lib, _DEFAULTS)
                lib.malloc_trim(0)


def reuse_freed_memory_in_worker(worker_id: int | None = None) -> None:
    """DataLoader ``worker_init_fn``: the worker process keeps freed heap memory for its lifetime.

    A loader worker does one job (render / decode / augment samples), each sample allocating
    the same large temporaries again: reusing them instead of fresh zero-filled pages makes the
    synthetic renderer ~1.7x faster (``make bench``, case ``synthetic_renderer``). The block is
    entered and never left (the worker's heap goes with the process).
    """
    global _worker_block
    if _worker_block is None:
        block = reuse_freed_memory()
        block.__enter__()
        _worker_block = block  # referenced for the process lifetime: a collected block would exit
