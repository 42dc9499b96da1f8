"""experiments/study_driver.py: the arms' resume rules and the numbers its table and curves print."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
import study_driver  # noqa: E402
from study_driver import Arm  # noqa: E402


def _finished(folder: Path, mae: float, fbeta: float, iou: float, curve: list[tuple[int, float]] = ()) -> None:
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps(
        {"test/hold/mae": mae, "test/hold/fbeta": fbeta, "test/hold/iou": iou, "test/other/mae": 9.0}))
    (folder / "csv").mkdir()
    lines = ["epoch,step,train/loss,val/hold/mae,val/hold/fbeta,val/hold/iou"]
    lines += [line for step, m in curve for line in (f"0,{step},1.0,,,", f"0,{step},,{m},0.5,0.25")]
    (folder / "csv" / "metrics.csv").write_text("\n".join(lines) + "\n")


def test_table_means_and_ranges_over_seeds(tmp_path):
    _finished(tmp_path / "a_s0", 0.10, 0.90, 0.80)
    _finished(tmp_path / "a_s1", 0.20, 0.80, 0.70)
    _finished(tmp_path / "b_s0", 0.30, 0.70, 0.60)
    arms = [Arm("a_s0", 0, []), Arm("a_s1", 1, []), Arm("b_s0", 0, []), Arm("c_s0", 0, [])]  # c unfinished
    lines = study_driver.table(arms, tmp_path, "hold", "hold-out").splitlines()
    assert lines[0] == "| arm | seeds | hold-out MAE | F-beta | IoU |"
    assert lines[2] == "| a | 2 | 0.150 (0.100-0.200) | 0.850 (0.800-0.900) | 0.750 (0.700-0.800) |"
    assert lines[3] == "| b | 1 | 0.300 | 0.700 | 0.600 |"
    assert len(lines) == 4


def test_curves_rows_step_after_the_optimizer_step_and_final_test(tmp_path):
    _finished(tmp_path / "a_s1", 0.1, 0.9, 0.8, curve=[(67, 0.3), (135, 0.2)])
    (tmp_path / "a_s1" / "csv" / "metrics.before_resume_1.csv").write_text(
        "epoch,step,val/hold/mae,val/hold/fbeta,val/hold/iou\n0,33,0.5,0.4,0.3\n")
    rows = study_driver.curves([Arm("a_s1", 1, [])], tmp_path, "hold", steps=272).splitlines()
    assert rows == ["arm,seed,step,mae,fbeta,iou,split",
                    "a,1,34,0.5000,0.4000,0.3000,val",  # the history before a resume comes first
                    "a,1,68,0.3000,0.5000,0.2500,val",
                    "a,1,136,0.2000,0.5000,0.2500,val",
                    "a,1,272,0.1000,0.9000,0.8000,test"]


def test_run_arm_starts_resumes_and_skips(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(subprocess, "call", lambda cmd, **kw: calls.append(cmd[3:]) or 0)
    arm = Arm("a_s0", 0, ["experiment=x", "seed=0"])
    folder = tmp_path / "a_s0"
    assert study_driver.run_arm(arm, folder) == 0
    assert calls[-1] == ["experiment=x", "seed=0"]
    assert (folder / study_driver.STARTED).read_text() == "experiment=x seed=0\n"
    (folder / "checkpoints").mkdir()
    (folder / "checkpoints" / "last.ckpt").write_bytes(b"")
    study_driver.run_arm(arm, folder)
    assert calls[-1] == [f"run_dir={folder}", "ckpt_path=last"]
    (folder / "metrics.json").write_text("{}")
    study_driver.run_arm(arm, folder)
    assert len(calls) == 2  # finished: not run again


def test_run_arm_refuses_a_folder_it_did_not_start(tmp_path, monkeypatch):
    monkeypatch.setattr(subprocess, "call", lambda cmd, **kw: pytest.fail("must not train"))
    folder = tmp_path / "a_s0"
    folder.mkdir()
    (folder / "mine.txt").write_text("user data")
    with pytest.raises(SystemExit, match="did not start it"):
        study_driver.run_arm(Arm("a_s0", 0, []), folder)
    assert (folder / "mine.txt").read_text() == "user data"


@pytest.mark.parametrize("script", ["cuhk_tr1/study.py", "label_free/study.py"])
def test_study_arms_have_unique_names_and_their_own_run_folder(script, tmp_path):
    out = subprocess.run([sys.executable, str(Path(__file__).resolve().parents[1] / "experiments" / script),
                          "list", "--out", str(tmp_path)], capture_output=True, text=True, check=True).stdout
    rows = [line.split(" ", 1) for line in out.splitlines()]
    names = [name for name, _ in rows]
    assert len(names) == len(set(names)) >= 4
    for name, args in rows:
        assert args.endswith(f"hydra.run.dir={tmp_path / name}")
        assert f"seed={name.rsplit('_s', 1)[1]}" in args.split()
