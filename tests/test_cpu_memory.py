"""Heap reuse for large CPU temporaries (ops/cpu_memory.py): fewer page faults, used where it pays."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from dbd_lightning.data.datamodule import DBDDataModule
from dbd_lightning.ops import cpu_memory
from dbd_lightning.ops.cpu_memory import reuse_freed_memory_in_worker

needs_glibc = pytest.mark.skipif(cpu_memory._glibc() is None, reason="glibc only (other C libraries: a no-op)")

# each round holds four 16 MB temporaries at once, then frees them (as one image's metrics or one
# rendered sample do): glibc trims the freed top of its heap, so the next round faults the pages in
# again, unless the heap keeps them
FAULTS = textwrap.dedent("""
    import resource, sys
    import numpy as np
    from dbd_lightning.ops.cpu_memory import reuse_freed_memory_in_worker
    if sys.argv[1] == "worker":
        reuse_freed_memory_in_worker(0)
    def round_():
        blocks = [np.ones(2_000_000) for _ in range(4)]
        return sum(float(b.sum()) for b in blocks)
    round_()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(30):
        round_()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
""")


def _faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", FAULTS, mode], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


@needs_glibc
def test_worker_mode_reuses_freed_memory_for_the_process_lifetime():
    plain, worker = _faults("plain"), _faults("worker")
    assert plain > 30 * 1000  # thousands of fresh pages every round
    assert worker < plain / 20


def test_datamodule_workers_start_in_heap_reuse_mode(tmp_path):
    from dbd_lightning.data.synthetic import SyntheticDefocusDataset

    ds = SyntheticDefocusDataset(4, seed=0, size=32)
    kw = dict(train={"s": ds}, train_transform=lambda s, **_: s, batch_size=2)
    assert DBDDataModule(num_workers=2, **kw)._loader(ds, 2, False, False).worker_init_fn is (
        reuse_freed_memory_in_worker)
    assert DBDDataModule(num_workers=0, **kw)._loader(ds, 2, False, False).worker_init_fn is None


class _RecordingLibc:
    """Stands in for glibc: records the ``mallopt`` / ``malloc_trim`` calls."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def mallopt(self, param: int, value: int) -> int:
        self.calls.append(("mallopt", param, value))
        return 1

    def malloc_trim(self, pad: int) -> int:
        self.calls.append(("malloc_trim", pad))
        return 1


def test_nested_blocks_switch_the_heap_once_and_restore_it_once_even_on_error(monkeypatch):
    lib = _RecordingLibc()
    monkeypatch.setattr(cpu_memory, "_glibc", lambda: lib)
    # M_MMAP_MAX = -4, M_TRIM_THRESHOLD = -1, M_TOP_PAD = -2 (glibc's malloc.h); glibc's defaults on exit
    enter = [("mallopt", -4, 0), ("mallopt", -1, 1 << 30), ("mallopt", -2, 64 << 20)]
    leave = [("mallopt", -4, 65536), ("mallopt", -1, 128 * 1024), ("mallopt", -2, 128 * 1024), ("malloc_trim", 0)]
    with cpu_memory.reuse_freed_memory():
        assert lib.calls == enter
        with cpu_memory.reuse_freed_memory():
            pass
        assert lib.calls == enter  # the inner block changes nothing
    assert lib.calls == enter + leave
    lib.calls.clear()
    with pytest.raises(ValueError, match="inside"), cpu_memory.reuse_freed_memory():
        raise ValueError("inside")
    assert lib.calls == enter + leave
    lib.calls.clear()
    with cpu_memory.reuse_freed_memory(enabled=False):
        pass
    assert lib.calls == []
