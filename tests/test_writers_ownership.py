"""The remaining writers of issue 26 (bench results, prepare's copies and markers) write atomically and
never overwrite a file they did not write (the converters': tests/test_convert_cli_errors.py; the zoo's:
tests/test_zoo.py)."""

from __future__ import annotations

import json
import shutil

import pytest

from dbd_lightning.bench import runner as bench_runner
from dbd_lightning.data import prepare as prepare_cli

from .benchmark_trees import make_ctcug


def test_bench_refuses_a_foreign_out_before_running_a_case(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    notes = tmp_path / "notes.json"
    notes.write_text('{"mine": 1}\n')
    ran = []
    monkeypatch.setattr(bench_runner.subprocess, "run", lambda *a, **k: ran.append(a))
    with pytest.raises(SystemExit) as exc:
        bench_runner.cli(["--out", str(notes), "--cases", "dffnet_infer_resnet18"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.startswith("error: --out ") and "notes.json" in err and "Traceback" not in err
    assert notes.read_text() == '{"mine": 1}\n' and ran == []


def test_bench_replaces_its_own_results(tmp_path):
    out = tmp_path / "results.json"
    out.write_text(json.dumps({"commit": None, "time": "t", "machine": {}, "cases": {}}))  # a file from before the mark
    bench_runner.main(["--out", str(out), "--cases"])
    data = json.loads(out.read_text())
    assert data["written_by"] == "dbd_lightning.bench" and data["cases"] == {}
    bench_runner.main(["--out", str(out), "--cases"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_prepare_copy_interrupted_leaves_no_half_file_and_reruns(tmp_path, monkeypatch):
    make_ctcug(tmp_path / "dl" / "CTCUG_release")
    real_copy, calls = shutil.copyfile, []

    def dying_copy(src, dst, *a, **k):
        calls.append(dst)
        if len(calls) == 5:  # the fifth file: half written, then the disk / process fails
            with open(dst, "wb") as fh:
                fh.write(open(src, "rb").read()[:10])
            raise KeyboardInterrupt
        return real_copy(src, dst, *a, **k)

    monkeypatch.setattr(prepare_cli.shutil, "copyfile", dying_copy)
    with pytest.raises(KeyboardInterrupt):
        prepare_cli.prepare("ctcug", tmp_path / "dl", tmp_path / "data", mode="copy")
    files = [p for p in (tmp_path / "data").rglob("*") if p.is_file()]
    assert len(files) == 4 and not any(".partial-" in p.name for p in files)
    monkeypatch.setattr(prepare_cli.shutil, "copyfile", real_copy)
    code, report = prepare_cli.prepare("ctcug", tmp_path / "dl", tmp_path / "data", mode="copy")
    assert code == 0 and "data layout check: OK" in report and "4 already there" in report
