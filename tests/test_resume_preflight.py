"""A resume that the preflight stops (free space, writability) leaves its run folder exactly as it was:
the checks run before Hydra writes ``.hydra_resume/`` and before the CSV history is moved."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbd_lightning.train import run
from dbd_lightning.utils import preflight
from dbd_lightning.utils.preflight import OutputDirError

from .helpers import compose_cfg, run_module

SMALL = ["model=dffnet_small", "data.image_size=[64,64]", "data.render_size=[64,64]", "data.batch_size=2",
         "data.eval_batch_size=2", "data.num_workers=0", "data.val_length=2", "data.test_length=2",
         "data.preset=shallow", "data.train_length=4"]
QUIET = ["~callbacks.progress_bar", "~callbacks.model_summary", "trainer.enable_progress_bar=false",
         "trainer.num_sanity_val_steps=0", "logger=csv"]


def _snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every file (its bytes) and folder (``None``) under ``folder``."""
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))}


def test_resume_stopped_by_the_free_space_check_leaves_the_run_folder_unchanged(tmp_path, monkeypatch):
    first = run_module("dbd_lightning.train", [*SMALL, *QUIET, "trainer.max_epochs=1", "hydra.run.dir=run"],
                       cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    folder = tmp_path / "run"
    assert (folder / "csv" / "metrics.csv").is_file() and (folder / "checkpoints" / "last.ckpt").is_file()
    before = _snapshot(folder)

    # the command line: 1 PiB asked for, so the check fails on any disk
    resumed = run_module("dbd_lightning.train", [f"run_dir={folder}", "ckpt_path=last", "trainer.max_epochs=2",
                                                 "preflight.min_free_mb=1073741824"], cwd=tmp_path)
    assert resumed.returncode == 2, resumed.stderr[-3000:]
    assert "error: not enough free disk space" in resumed.stderr and str(folder) in resumed.stderr
    assert "Traceback" not in resumed.stderr
    assert _snapshot(folder) == before  # no .hydra_resume/, metrics.csv not moved, train.log not appended

    # in process (the runner's own order): the disk is full once the model is known
    real = preflight.shutil.disk_usage
    monkeypatch.setattr(preflight.shutil, "disk_usage", lambda p: real(p)._replace(free=5 * preflight.MIB))
    cfg = compose_cfg(folder, [*SMALL, *QUIET, "trainer.max_epochs=2", f"run_dir={folder}", "ckpt_path=last"])
    with pytest.raises(OutputDirError, match="not enough free disk space"):
        run(cfg)
    assert _snapshot(folder) == before
