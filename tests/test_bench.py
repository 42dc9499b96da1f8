"""`make bench` writes comparable JSON (no timing is asserted: benchmarks are not tests)."""

import json

import pytest

from dbd_lightning.bench import main


@pytest.mark.slow
def test_bench_writes_json_with_the_documented_fields(tmp_path):
    out = tmp_path / "bench.json"
    main(["--cases", "dffnet_infer_resnet18", "synthetic_renderer", "--quick", "--out", str(out)])
    data = json.loads(out.read_text())
    infer = data["cases"]["dffnet_infer_resnet18"]
    for key in ("ms_per_image", "images_per_s", "backbone_ms", "decoder_ms", "peak_rss_MiB", "decoder_gflops"):
        assert infer[key] > 0
    assert data["cases"]["synthetic_renderer"]["samples_per_s"] > 0
    assert data["machine"]["cpu_count"] >= 1


def test_a_failing_case_is_recorded_and_sets_the_exit_status(tmp_path, monkeypatch):
    from dbd_lightning import bench

    # the parent accepts the name; the child process (a fresh interpreter) does not know it and fails
    monkeypatch.setitem(bench.CASES, "no_such_case", ("dbd_lightning.bench:no_such_function", {}, {}))
    out = tmp_path / "bench.json"
    assert bench.cli(["--cases", "no_such_case", "--out", str(out)]) == 1
    error = json.loads(out.read_text())["cases"]["no_such_case"]["error"]
    assert "unknown bench case 'no_such_case'" in error
