"""``make bench`` cases ``startup_help`` and ``startup_predict_zoo``: whole commands, timed as subprocesses.

What a user waits for is the command, not the forward pass: interpreter start, imports, Hydra's
config composition, reading the model, writing the maps. Each command runs as its own process
(``python -m dbd_lightning.<cli> ...``), interleaved with a reference command in the same
loop (``python -c "import torch"``, the floor any torch-based path pays), so that a machine shared
with other jobs slows all of them alike and the ratios stay comparable. Per command: median and
minimum wall-clock seconds and the median CPU seconds of the child process (user + system; other
jobs inflate wall-clock time, far less CPU time), its exit status, and the ratio to the reference.

* ``startup_help``: ``--help`` of every command-line entry point (:data:`CLIS`).
* ``startup_predict_zoo``: one 640 x 480 photo with a released model, ``backend=auto``: each run
  with a new, empty cache folder (``DBD_CACHE_DIR``: the first use on a machine) and a new output
  folder. Also records whether the run imported torch / Lightning (``-X importtime`` of one run).
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: the entry points whose --help is timed (pyproject [project.scripts] and the python -m commands)
CLIS = ("train", "eval", "predict", "export", "synth", "zoo", "bench", "convert", "data.check", "data.prepare")
REFERENCE = "import_torch"


def _child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _run(cmd: list[str], env: dict | None = None) -> tuple[float, float, int, str]:
    """``(wall s, child CPU s, exit status, stderr tail)`` of one command."""
    c0, t0 = _child_cpu(), time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    return time.perf_counter() - t0, _child_cpu() - c0, proc.returncode, proc.stderr[-500:]


def _timed(commands: dict[str, callable], repeats: int) -> dict:
    """Run every command ``repeats`` times, interleaved; the summary dict of the module docstring."""
    wall: dict[str, list[float]] = {k: [] for k in commands}
    cpu: dict[str, list[float]] = {k: [] for k in commands}
    status: dict[str, int] = {}
    errors: dict[str, str] = {}
    for _ in range(int(repeats)):
        for name, make in commands.items():
            w, c, rc, err = _run(*make())
            wall[name].append(w)
            cpu[name].append(c)
            status[name] = max(status.get(name, 0), rc)
            if rc:
                errors[name] = err
    med = {k: statistics.median(v) for k, v in wall.items()}
    out = {
        "median_wall_s": med,
        "min_wall_s": {k: min(v) for k, v in wall.items()},
        "median_cpu_s": {k: statistics.median(v) for k, v in cpu.items()},
        "ratio_median_wall_to_import_torch": {k: v / med[REFERENCE] for k, v in med.items()},
        "exit_status": status,
        "repeats": int(repeats),
    }
    if errors:
        out["stderr_of_failures"] = errors
    return out


def _reference() -> tuple[list[str]]:
    return ([sys.executable, "-c", "import torch"],)


def bench_cli_help(repeats: int = 3, clis: tuple[str, ...] = CLIS) -> dict:
    """``python -m dbd_lightning.<cli> --help`` of every entry point, with ``import torch`` as reference."""
    commands = {REFERENCE: _reference}
    for cli in clis:
        commands[cli] = (lambda cli=cli: ([sys.executable, "-m", f"dbd_lightning.{cli}", "--help"],))
    return _timed(commands, repeats)


def _photo(path: Path, height: int = 480, width: int = 640) -> Path:
    import numpy as np
    from PIL import Image

    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([(x * 255 // width), (y * 255 // height), ((x + y) % 256)], -1).astype(np.uint8)
    Image.fromarray(rgb).save(path, quality=92)
    return path


def _imported(cmd: list[str], env: dict) -> dict[str, bool]:
    """Which heavy packages one run of ``cmd`` imported (read from ``-X importtime``)."""
    proc = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], capture_output=True, text=True, env=env)
    names = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    return {pkg: pkg in names for pkg in ("torch", "lightning", "wandb", "albumentations", "timm", "onnxruntime")}


def bench_predict_zoo(name: str = "zoo:dffnet_lite0_synth", repeats: int = 3) -> dict:
    """One photo predicted with a released model on the CPU, each run with an empty cache (first use)."""
    with tempfile.TemporaryDirectory(prefix="dbd_bench_startup_") as tmp:
        root = Path(tmp)
        image = _photo(root / "one.jpg")
        count = iter(range(10 ** 6))

        def predict() -> tuple[list[str], dict]:
            n = next(count)
            env = {**os.environ, "DBD_CACHE_DIR": str(root / f"cache{n}")}
            return ([sys.executable, "-m", "dbd_lightning.predict", f"ckpt={name}", f"input={image}",
                     f"output={root / f'out{n}'}", "device=cpu", f"hydra.run.dir={root / f'hydra{n}'}"], env)

        result = _timed({REFERENCE: _reference, "predict_first_use": predict}, repeats)
        result["imported"] = _imported(*predict())
    result.update(model=name, image="640x480 jpg")
    return result
