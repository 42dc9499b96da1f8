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


def test_timer_warms_up_then_interleaves_and_keeps_the_last_result():
    from dbd_lightning.utils.timer import measure

    calls = []
    timings = measure({"a": lambda: calls.append("a") or len(calls), "b": lambda: calls.append("b") or -len(calls)},
                      repeats=3, warmup=2)
    assert calls == ["a", "b"] * 5  # 2 warm-up rounds, then 3 timed rounds, A B A B ...
    assert [len(timings[k].wall) for k in "ab"] == [3, 3] and [len(timings[k].cpu) for k in "ab"] == [3, 3]
    assert (timings["a"].result, timings["b"].result) == (9, -10)
    single = measure(lambda: 7, repeats=1, warmup=0)
    assert single.result == 7 and len(single.wall) == 1
    with pytest.raises(ValueError, match="repeats"):
        measure(lambda: None, repeats=0)


def test_summarize_gives_medians_minima_and_ratios_to_the_reference():
    from dbd_lightning.utils.timer import Timing, summarize

    t = {"ref": Timing(wall=[2.0, 4.0, 3.0]), "fast": Timing(wall=[1.0, 0.5, 2.0])}
    s = summarize(t, "ref", unit=1.0, unit_name="s")
    assert s == {"median_s": {"ref": 3.0, "fast": 1.0}, "min_s": {"ref": 2.0, "fast": 0.5},
                 "ratio_median": {"ref": 1.0, "fast": 1.0 / 3.0}, "ratio_min": {"ref": 1.0, "fast": 0.25}}
    assert summarize(t, "ref")["median_ms"] == {"ref": 3000.0, "fast": 1000.0}
    with pytest.raises(ValueError, match="reference 'nope'"):
        summarize(t, "nope")
