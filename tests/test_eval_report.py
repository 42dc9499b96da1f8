"""eval reports: several checkpoints + saved maps x several test sets -> tables, PR curves, grid; bad inputs."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
from omegaconf import OmegaConf, open_dict
from PIL import Image

from dbd_lightning.data.io import list_images, read_mask, read_rgb
from dbd_lightning.eval import evaluate
from dbd_lightning.inference.predictor import CheckpointPredictor
from dbd_lightning.reports import SavedMaps, latex_table, markdown_table
from dbd_lightning.reports.plots import iso_f_precision
from dbd_lightning.reports.saved_maps import SavedMapError, read_map
from dbd_lightning.runs.resolver import resolve_checkpoint
from dbd_lightning.runs.run import CheckpointSpecError
from dbd_lightning.utils.errors import handle_user_errors

from .helpers import compose_cfg, run_module
from .run_fixtures import CUHK_SAMPLE, DUT_SAMPLE, make_run

SETS = {"cuhk": CUHK_SAMPLE, "dut": DUT_SAMPLE}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return make_run(root, seed=0), make_run(root, seed=1)


def _eval_cfg(tmp_path, overrides, sets=SETS):
    cfg = compose_cfg(tmp_path / "out", ["data=folder", f"data.root={CUHK_SAMPLE}", "data.num_workers=0",
                                         *overrides], config_name="eval")
    with open_dict(cfg):
        cfg.data.datamodule.test = {
            k: {"_target_": "dbd_lightning.data.folder.ImageMaskFolder", "root": str(v), "polarity": "white_in_focus"}
            for k, v in sets.items()}
        cfg.data.datamodule.train = {}
        cfg.data.datamodule.val = {}
    return cfg


def _hand_metrics(focus_maps, gts):
    """D-DFFNet convention by hand: MAE per image; F (b2=0.3) @0.5 blur positive per image; IoU pooled."""
    maes, fs, inter, union = [], [], 0, 0
    for p, g in zip(focus_maps, gts, strict=True):
        maes.append(np.abs(p.astype(np.float64) - g).mean())
        pb, gb = (1 - p) >= 0.5, g == 0  # blur positive
        tp, fp, fn = (pb & gb).sum(), (pb & ~gb).sum(), (~pb & gb).sum()
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        fs.append(1.3 * prec * rec / (0.3 * prec + rec) if prec + rec else 0.0)
        inter, union = inter + tp, union + tp + fp + fn
    return {"mae": np.mean(maes), "fbeta": np.mean(fs), "iou": inter / union}


def test_two_checkpoints_and_saved_maps_on_two_datasets(tmp_path, runs):
    run_a, run_b = runs
    pred_a = CheckpointPredictor.from_run(resolve_checkpoint(run_a), device="cpu")
    # "another method's" published maps: model A's maps saved as blur maps (white = blurred), 16-bit PNG
    focus = {}
    for ds, root in SETS.items():
        for img in list_images(root / "image"):
            f = pred_a.predict_image(read_rgb(img))["focus"]
            focus[(ds, img.stem)] = f
            out = tmp_path / "other" / ds / f"{img.stem}.png"
            out.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.round((1 - f) * 65535).astype(np.uint16)).save(out)
    cfg = _eval_cfg(tmp_path, [f"ckpt=[{run_a},{run_b}]", "names=[A,B]", "device=cpu",
                               f"+maps.Other.root={tmp_path}/other", "+maps.Other.polarity=white_blurred"])
    metrics = evaluate(cfg)
    out = tmp_path / "out"

    # numbers: model A vs a hand computation on the same maps
    results = json.loads((out / "results.json").read_text())["results"]
    for ds, root in SETS.items():
        gts = [read_mask(p, "white_in_focus") for p in list_images(root / "gt")]
        maps = [focus[(ds, p.stem)] for p in list_images(root / "image")]
        hand = _hand_metrics(maps, gts)
        for k, v in hand.items():
            assert results["A"][ds][k] == pytest.approx(v, abs=1e-5), (ds, k)
            assert results["Other"][ds][k] == pytest.approx(v, abs=2e-4), (ds, k)  # 16-bit quantisation
        assert metrics[f"test/{ds}/mae"] == results["A"][ds]["mae"]
    assert results["A"]["cuhk"]["mae"] != results["B"]["cuhk"]["mae"]

    # tables: markdown / CSV / LaTeX hold the same numbers, convention under the table
    md = (out / "results.md").read_text()
    assert "| model | cuhk MAE ↓ | cuhk F-beta ↑ | cuhk IoU ↑ | dut MAE ↓" in md
    assert "Convention (ddffnet)" in md and "blur positive" in md and "Models: A = " in md
    rows = {r["model"]: r for r in csv.DictReader((out / "results.csv").open())}
    assert list(rows) == ["A", "B", "Other"]
    for name in rows:
        for ds in SETS:
            for k in ("mae", "fbeta", "iou"):
                assert float(rows[name][f"{ds}/{k}"]) == pytest.approx(results[name][ds][k], abs=1e-6)
    tex = (out / "results.tex").read_text()
    assert r"\multicolumn{3}{c}{cuhk}" in tex and r"\multicolumn{3}{c}{dut}" in tex and "Convention" in tex

    # PR curves: one PNG per dataset; curve values checked by hand at threshold 0 (everything positive)
    curves = json.loads((out / "pr_curves.json").read_text())
    for ds, root in SETS.items():
        png = Image.open(out / f"pr_{ds}.png")
        assert png.size[0] > 100 and png.size[1] > 100
        gts = [read_mask(p, "white_in_focus") for p in list_images(root / "gt")]
        blur_frac = np.mean([(g == 0).mean() for g in gts])
        for name in ("A", "B", "Other"):
            assert curves[ds][name]["precision"][0] == pytest.approx(blur_frac, abs=1e-5)
            assert curves[ds][name]["recall"][0] == pytest.approx(1.0)
            assert len(curves[ds][name]["recall"]) == 256
    grid = np.asarray(Image.open(out / "qualitative_grid.png"))
    assert grid.ndim == 3 and grid.shape[0] > 200 and grid.shape[1] > 300


def test_predict_output_folder_ranks_like_its_checkpoint(tmp_path, runs):
    """predict -> saved .npy maps -> eval as 'maps' gives the checkpoint's numbers exactly."""
    from dbd_lightning.predict import predict

    run_a = runs[0]
    pcfg = compose_cfg(tmp_path / "p", [f"ckpt={run_a}", f"input={CUHK_SAMPLE}/image", f"output={tmp_path}/pred",
                                        "save_npy=true", "overlay=false", "device=cpu"], config_name="predict")
    predict(pcfg)
    cfg = _eval_cfg(tmp_path, [f"ckpt={run_a}", "names=[ckpt]", "device=cpu", "report.grid_samples=0",
                               "report.pr_curves=false", f"+maps.npy.root={tmp_path}/pred/focus",
                               "+maps.npy.suffixes=[.npy]"], sets={"cuhk": CUHK_SAMPLE})
    evaluate(cfg)
    res = json.loads((tmp_path / "out" / "results.json").read_text())["results"]
    for k in ("mae", "fbeta", "iou"):
        assert res["npy"]["cuhk"][k] == pytest.approx(res["ckpt"]["cuhk"][k], abs=1e-7)
    assert not (tmp_path / "out" / "qualitative_grid.png").exists()


def test_bad_inputs_fail_clearly(tmp_path, runs, capsys):
    run_a, _ = runs
    with pytest.raises(CheckpointSpecError, match="checkpoint or run folder not found"):
        evaluate(_eval_cfg(tmp_path, [f"ckpt=[{run_a},{tmp_path}/missing]"]))
    with pytest.raises(CheckpointSpecError, match="W&B run 'zzz999' not found"):
        evaluate(_eval_cfg(tmp_path, ["ckpt=wandb:zzz999"]))
    with pytest.raises(CheckpointSpecError, match="matches no train run folder"):
        evaluate(_eval_cfg(tmp_path, [f"ckpt={tmp_path}/nothing*"]))
    with pytest.raises(ValueError, match="nothing to evaluate"):
        evaluate(_eval_cfg(tmp_path, []))
    # a method whose folder lacks maps for some images
    (tmp_path / "partial" / "cuhk").mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "partial" / "cuhk" / "1.png")
    with pytest.raises(FileNotFoundError, match=r"4 of 5 images of cuhk have no map"):
        evaluate(_eval_cfg(tmp_path, [f"+maps.P.root={tmp_path}/partial"], sets={"cuhk": CUHK_SAMPLE}))
    # a folder of raw .npy maps read with the default (image) suffixes: a user error naming the key to set
    (tmp_path / "raw" / "cuhk").mkdir(parents=True)
    np.save(tmp_path / "raw" / "cuhk" / "1.npy", np.zeros((8, 8), np.float32))
    with pytest.raises(SystemExit) as exc, handle_user_errors(log_file=False):
        evaluate(_eval_cfg(tmp_path, [f"+maps.R.root={tmp_path}/raw"], sets={"cuhk": CUHK_SAMPLE}))
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "Traceback" not in err
    assert "maps.R: no map files (.png" in err and "it holds .npy files: add +maps.R.suffixes=[.npy]" in err
    # maps of the right type whose names lack the given name_suffix: the hint names name_suffix
    with pytest.raises(FileNotFoundError, match=r"no file name ends with name_suffix '_pred': check maps.R.name_suffix"):
        evaluate(_eval_cfg(tmp_path, [f"+maps.R.root={tmp_path}/raw", "+maps.R.suffixes=[.npy]",
                                      "+maps.R.name_suffix=_pred"], sets={"cuhk": CUHK_SAMPLE}))
    # a .npy map outside [0, 1]: a user error naming the file
    np.save(tmp_path / "raw" / "cuhk" / "1.npy", np.full((8, 8), 2.0, np.float32))
    with pytest.raises(SavedMapError, match=r"1.npy: .npy values must lie in \[0, 1\]"):
        read_map(tmp_path / "raw" / "cuhk" / "1.npy")
    with pytest.raises(ValueError, match="maps.maps.polarity: unknown map polarity"):
        SavedMaps(tmp_path, polarity="white")
    # an empty test folder
    (tmp_path / "empty" / "image").mkdir(parents=True)
    (tmp_path / "empty" / "gt").mkdir()
    with pytest.raises(Exception, match="no image/GT pairs"):
        evaluate(_eval_cfg(tmp_path, [f"ckpt={run_a}"], sets={"e": tmp_path / "empty"}))


def test_checkpoint_that_does_not_match_its_config_is_refused(tmp_path, runs):
    run_a, _ = runs
    bad = tmp_path / "bad_run"
    (bad / ".hydra").mkdir(parents=True)
    (bad / "checkpoints").mkdir()
    (bad / "checkpoints" / "epoch_000.ckpt").write_bytes((run_a / "checkpoints" / "epoch_000.ckpt").read_bytes())
    cfg = OmegaConf.load(run_a / ".hydra" / "config.yaml")
    cfg.model.net.channels = 16
    (bad / ".hydra" / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    with pytest.raises(RuntimeError, match="does not match the model built from the config"):
        evaluate(_eval_cfg(tmp_path, [f"ckpt={bad}"]))


def test_wandb_run_id_resolves_to_its_local_run(tmp_path, runs):
    run_a, _ = runs
    log_dir = tmp_path / "logs"
    run = shutil.copytree(run_a, log_dir / "train" / "runs" / "r1")
    (run / "wandb" / "offline-run-20260101_000000-abc123").mkdir(parents=True)
    found = resolve_checkpoint("wandb:abc123", search_root=log_dir)
    assert found.run_dir == run and found.ckpt == run / "checkpoints" / "epoch_000.ckpt"
    # entity/project/id form of a synced run works too
    assert resolve_checkpoint("wandb:me/dbd_lightning/abc123", search_root=log_dir).run_dir == run


def test_table_renderers_mark_the_best_and_escape_latex():
    res = {"m_1": {"d": {"mae": 0.1, "fbeta": 0.8, "iou": 0.5}}, "m2": {"d": {"mae": 0.2, "fbeta": 0.9, "iou": 0.5}}}
    md = markdown_table(res, "conv")
    assert "| m_1 | **0.1000** | 0.8000 | **0.5000** |" in md and "| m2 | 0.2000 | **0.9000** | **0.5000** |" in md
    tex = latex_table(res, "beta^2 >= 0.5")
    assert r"m\_1 & \textbf{0.100}" in tex and r"beta\^{}2 $\geq$ 0.5" in tex
    # iso-F line: points on it have F = f
    r = np.array([0.5, 0.8, 1.0])
    p = iso_f_precision(r, 0.6, 0.3)
    np.testing.assert_allclose(1.3 * p * r / (0.3 * p + r), 0.6)


def test_eval_cli_compares_runs_in_one_command(tmp_path, runs):
    run_a, run_b = runs
    assert run_a.parent == run_b.parent
    proc = run_module("dbd_lightning.eval", [f"ckpt={run_a.parent}/run*", "data=folder",
                                             f"data.root={DUT_SAMPLE}", "data.num_workers=0", "device=cpu"],
                      cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = sorted((tmp_path / "outputs" / "eval" / "runs").iterdir())[-1]
    for f in ("results.md", "results.csv", "results.tex", "results.json", "metrics.json", "pr_folder.png",
              "qualitative_grid.png"):
        assert (out / f).is_file(), f
    assert "| run0 |" in proc.stdout and "| run1 |" in proc.stdout


def test_eval_logs_its_report_to_an_offline_wandb_run(tmp_path, runs):
    cfg = _eval_cfg(tmp_path, [f"ckpt={runs[0]}", "device=cpu", "wandb=true", "report.grid_samples=1"])
    evaluate(cfg)
    out = tmp_path / "out"
    assert list((out / "wandb").glob("offline-run-*/run-*.wandb"))
    assert (out / "grid_cuhk.png").is_file() and (out / "grid_dut.png").is_file()


def test_five_benchmark_test_sets_in_one_table_with_each_polarity(tmp_path):
    """data=[cuhk_te1,dut_te,ctcug,ebd,ebd1305]: GT polarities differ per dataset (CUHK/CTCUG white = blurred);
    a method whose saved maps are the truth scores MAE 0 / F 1 / IoU 1 on all, the same files read with the
    opposite polarity score MAE 1 / F 0 / IoU 0."""
    from .benchmark_trees import focus_mask, make_ctcug, make_cuhk, make_dut, make_ebd

    root = tmp_path / "data"
    make_cuhk(root / "CUHK", n=100, motion=0)
    make_dut(root / "DUT", n_train=0, n_test=6)
    make_ctcug(root / "CTCUG", n=5)
    make_ebd(root / "EBD", n=7)
    truth = Image.fromarray(focus_mask() * 255)
    stems = {"cuhk_te1": [p.stem for p in list_images(root / "CUHK" / "image")],
             "dut_te": [str(i) for i in range(1, 7)], "ctcug": [str(i) for i in range(1, 6)],
             "ebd": [str(i) for i in range(1, 8)], "ebd1305": [str(i) for i in range(1, 8)]}
    for ds, names in stems.items():
        (tmp_path / "maps" / ds).mkdir(parents=True)
        for n in names:
            truth.save(tmp_path / "maps" / ds / f"{n}.png")
    cfg = compose_cfg(tmp_path / "out", ["data=[cuhk_te1,dut_te,ctcug,ebd,ebd1305]", f"data.root={root}",
                                         "data.strict=false", "data.num_workers=0", "report.grid_samples=1",
                                         f"+maps.Truth.root={tmp_path}/maps", f"+maps.Inverted.root={tmp_path}/maps",
                                         "+maps.Inverted.polarity=white_blurred"], config_name="eval")
    with pytest.warns(UserWarning):  # the reduced trees do not have the published image counts
        evaluate(cfg)
    res = json.loads((tmp_path / "out" / "results.json").read_text())
    assert res["counts"] == {"cuhk_te1": 100, "dut_te": 6, "ctcug": 5, "ebd": 7, "ebd1305": 7}
    for ds in stems:
        assert res["results"]["Truth"][ds] == {"mae": 0.0, "fbeta": 1.0, "iou": 1.0}
        assert res["results"]["Inverted"][ds] == {"mae": 1.0, "fbeta": 0.0, "iou": 0.0}
        assert (tmp_path / "out" / f"pr_{ds}.png").is_file()
    header = (tmp_path / "out" / "results.csv").read_text().splitlines()[0]
    assert header.startswith("model,cuhk_te1/mae,cuhk_te1/fbeta,cuhk_te1/iou,dut_te/mae")


def test_a_pipeline_model_is_ranked_with_the_same_metrics(tmp_path):
    """model=<name> (predict_image protocol, e.g. Karaali) scored like a checkpoint; numbers by hand."""
    from .test_predict import FakeBlurPipeline

    cfg = _eval_cfg(tmp_path, ["report.grid_samples=0", "report.pr_curves=false"], sets={"dut": DUT_SAMPLE})
    with open_dict(cfg):
        cfg.model = {"_target_": "tests.test_predict.FakeBlurPipeline"}
    evaluate(cfg)
    res = json.loads((tmp_path / "out" / "results.json").read_text())["results"]
    pipe = FakeBlurPipeline()
    maps = [pipe.predict_image(read_rgb(p))["focus"] for p in list_images(DUT_SAMPLE / "image")]
    gts = [read_mask(p, "white_in_focus") for p in list_images(DUT_SAMPLE / "gt")]
    for k, v in _hand_metrics(maps, gts).items():
        assert res["FakeBlurPipeline"]["dut"][k] == pytest.approx(v, abs=1e-5)
