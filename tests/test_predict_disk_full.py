"""predict on a full disk and two predicts into one folder: no half-written file, no temporary file, one
line and exit 2, and the folder stays predict's own (the same command's rerun completes it; both runs'
files are recognised). The disk is simulated (tests/disk_full.py); predict runs as its ``main`` does."""

from __future__ import annotations

import json

import pytest

from .disk_full import FullDisk, partial_files
from .test_bad_input_data_predict import Brightness, _photos, digest, run_predict

STOP = "disk full while writing {}: free space and rerun the same command; finished files are kept"


def _files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def _overlay_b(path):
    return path.parent.name == "overlay" and "b.png" in path.name


@pytest.mark.parametrize("space_comes_back", [False, True], ids=["disk_stays_full", "space_freed_at_once"])
def test_disk_full_stops_cleanly_and_the_rerun_completes_the_folder(tmp_path, capsys, monkeypatch,
                                                                    space_comes_back):
    src = _photos(tmp_path / "photos")
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("the user's own file")
    user = digest(tmp_path, skip=tmp_path / "_hydra")
    disk = FullDisk(monkeypatch, out, free=100, when=_overlay_b, once=space_comes_back)

    code, text = run_predict(tmp_path, capsys, src, out)
    assert disk.hits, "the simulated disk never filled"
    assert code == 2, text
    assert f"error: {STOP.format(out / 'overlay' / 'b.png')}" in text and "Traceback" not in text, text
    # finished files kept, complete; nothing truncated, no temporary file; the user's file untouched
    assert _files(out) == ["focus/a.png", "focus/b.png", "notes.txt", "overlay/a.png", "report.json"]
    assert partial_files(tmp_path) == []
    after = digest(tmp_path, skip=tmp_path / "_hydra")
    assert {k: after[k] for k in user} == user
    report = json.loads((out / "report.json").read_text())
    if space_comes_back:  # the report could be finished: what was written, and why it stopped
        assert report["written"] == ["a"] and report["stopped"].startswith("disk full while writing")
        assert report["files"] == ["focus/a.png", "focus/b.png", "overlay/a.png"]
    else:  # the disk stayed full: the announcement written before any map still claims them
        assert report["status"] == "running"

    monkeypatch.undo()  # space freed: the same command again
    code, text = run_predict(tmp_path, capsys, src, out)
    assert code == 0 and "2 image(s) written" in text, text
    assert _files(out) == ["focus/a.png", "focus/b.png", "notes.txt", "overlay/a.png", "overlay/b.png",
                           "report.json"]
    assert partial_files(tmp_path) == []
    report = json.loads((out / "report.json").read_text())
    assert report["files"] == ["focus/a.png", "focus/b.png", "overlay/a.png", "overlay/b.png"]
    assert "pending" not in report and "status" not in report and "stopped" not in report
    assert (out / "notes.txt").read_text() == "the user's own file"


def test_disk_full_before_anything_is_written_leaves_the_folder_as_it_was(tmp_path, capsys, monkeypatch):
    src = _photos(tmp_path / "photos")
    out = tmp_path / "out"
    assert run_predict(tmp_path, capsys, src, out)[0] == 0
    before = digest(out)
    FullDisk(monkeypatch, out, free=0)
    code, text = run_predict(tmp_path, capsys, src, out, "save_npy=true")
    assert code == 2 and STOP.format(out / "report.json") in text
    assert digest(out) == before and partial_files(out) == []


class _StartsAnotherRun(Brightness):
    """Runs ``other()`` (a whole second predict into the same folder) while predicting its first image."""

    def __init__(self, other):
        super().__init__()
        self.other = other

    def predict_image(self, rgb):
        other, self.other = self.other, None
        if other is not None:
            other()
        return super().predict_image(rgb)


@pytest.mark.parametrize("same_inputs", [False, True], ids=["other_images", "same_images"])
def test_two_predicts_into_one_folder_both_keep_their_files_recognised(tmp_path, capsys, same_inputs):
    first, second = _photos(tmp_path / "first"), tmp_path / "second"
    second.mkdir()
    names = {"a.png": "a.png", "b.png": "b.png"} if same_inputs else {"a.png": "c.png", "b.png": "d.png"}
    for name, copy in names.items():
        (second / copy).write_bytes((first / name).read_bytes())
    out = tmp_path / "out"
    results = []
    inner = _StartsAnotherRun(lambda: results.append(run_predict(tmp_path, capsys, second, out)))
    code, text = run_predict(tmp_path, capsys, first, out, predictor=inner)
    assert code == 0 and "2 image(s) written" in text and "skipped" not in text, text
    assert results and results[0][0] == 0, results
    report = json.loads((out / "report.json").read_text())
    stems = "ab" if same_inputs else "abcd"
    both = [f"{d}/{n}.png" for d in ("focus", "overlay") for n in stems]
    assert report["files"] == both and "pending" not in report
    for src in (second, first):  # each run's files are predict's own: rerunning either is accepted
        code, text = run_predict(tmp_path, capsys, src, out)
        assert code == 0 and "skipped" not in text, text
    assert json.loads((out / "report.json").read_text())["files"] == both
