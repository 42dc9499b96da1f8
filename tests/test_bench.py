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
