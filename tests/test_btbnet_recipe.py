"""BTBNet recipe end to end: data configs (simulated set, CUHK x16), two-phase pipeline, metric config."""

from __future__ import annotations

import pytest
import torch

from dbd_lightning.pipelines.stages import stage_overrides
from dbd_lightning.train import run
from dbd_lightning.utils.config import build_datamodule

from .benchmark_trees import make_cuhk
from .helpers import TINY, compose_cfg

CPU = ["model.net.widths=[4,8,8,16,16]", "model.net.ffic_channels=[8,8,4,1]", "logger=none"]


def test_synthetic_btbnet_data_config_serves_the_x16_pretraining_set(tmp_path):
    cfg = compose_cfg(tmp_path, ["data=synthetic_btbnet", "data.image_size=[32,32]", "data.render_size=[32,32]",
                                 "data.train_length=40", "data.num_workers=0"])
    dm = build_datamodule(cfg)
    train = dm.train_sets["btbnet_sim"]
    assert len(train) == 40 * 16 and dm.val_names == ["btbnet_sim"]
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (1, 3, 32, 32) and set(batch["mask"].unique().tolist()) <= {0.0, 1.0}
    raw = train[16 * 5 + 2]  # source 0 variant 5, rotated by 90 degrees
    assert raw["name"].endswith("_o2") and raw["mask"].mean() == pytest.approx(0.5)


def test_cuhk_x16_config_wraps_the_training_set_only(tmp_path):
    root = make_cuhk(tmp_path / "data" / "CUHK", n=110, motion=0).parent
    cfg = compose_cfg(tmp_path, ["data=cuhk_tr1_btbnet", f"data.root={root}", "data.image_size=[32,32]",
                                 "data.num_workers=0", "data.strict=false"])
    with pytest.warns(UserWarning):  # 10 TR-1 images instead of 604: layout warning (strict=false)
        dm = build_datamodule(cfg)
    assert len(dm.train_sets["cuhk_tr1"]) == 16 * 10
    assert len(dm.val_sets["cuhk_te1"]) == 100 and cfg.data.batch_size == 1
    assert cfg.data.datamodule.train_transform.flip == "none"


def test_pretrain_overrides_keep_model_trainer_and_size_keys_only(tmp_path):
    pretrain = compose_cfg(tmp_path, ["experiment=btbnet_two_phase"]).pipeline.stages[0]
    cli = ["experiment=btbnet_two_phase", "model=btbnet_small", "data=cuhk_tr1_btbnet", "data.root=/x",
           "data.image_size=[64,64]", "data.sets.cuhk_tr1.root=/y", "trainer.max_epochs=3",
           "model.net.widths=[4,8,8,16,16]", "model.net.init_ckpt=/z.ckpt", "pipeline.pretrain_overrides=[]"]
    assert stage_overrides(cli, pretrain) == ["data.image_size=[64,64]", "trainer.max_epochs=3",
                                       "model.net.widths=[4,8,8,16,16]"]


def test_two_phase_fine_tunes_from_the_pretraining_checkpoint(tmp_path, monkeypatch):
    import dbd_lightning.pipelines.stages as stages

    monkeypatch.setattr(stages, "hydra_state", lambda: (TINY + CPU + ["data.train_length=2"], {"model": "btbnet_small"}))
    cfg = compose_cfg(tmp_path, ["experiment=btbnet_two_phase", "model=btbnet_small", "data=synthetic", *TINY, *CPU,
                                 "trainer.max_epochs=1", "+trainer.limit_train_batches=1",
                                 "+trainer.limit_val_batches=1", "test=false"])
    seen = []

    def spy(c):
        seen.append(c)
        return run(c)

    metrics = stages.run_pipeline(cfg, spy)
    pre, fine = seen
    assert pre.data.name == "btbnet_sim" and pre.task_name == "btbnet_pretrain"
    assert list(pre.model.net.widths) == [4, 8, 8, 16, 16] and pre.data.image_size == [64, 64]
    ckpt = (tmp_path / "pretrain_checkpoint.txt").read_text().strip()
    assert ckpt and fine.model.net.init_ckpt == ckpt and "pipeline" not in fine
    assert any(k.startswith("pretrain/val/btbnet_sim/") for k in metrics)
    # the fine-tuning network really starts from the pretrained weights
    from dbd_lightning.runs.task_builder import build_task
    from dbd_lightning.utils.checkpoint import load_state_dict

    state = load_state_dict(ckpt)
    net = build_task(fine).net
    torch.testing.assert_close(net.fnet.body[0].weight, state["net.fnet.body.0.weight"])


def test_metrics_btbnet_config_logs_average_precision_recall_f(tmp_path):
    cfg = compose_cfg(tmp_path, ["experiment=btbnet_1s", "data=synthetic", *TINY, *CPU,
                                 "++trainer.fast_dev_run=true"])
    metrics = run(cfg)
    assert {"test/synthetic/precision", "test/synthetic/recall", "test/synthetic/fbeta",
            "test/synthetic/mae"} <= set(metrics)
    assert "adaptive (>= 1.5 x mean)" in (tmp_path / "results.md").read_text()


def test_eval_report_accepts_the_btbnet_metric_config():
    import numpy as np

    from dbd_lightning.reports.evaluate import evaluate_sources

    class Half:  # predicts the left half in focus
        def predict_image(self, image):
            p = np.zeros(image.shape[:2], np.float32)
            p[:, : image.shape[1] // 2] = 0.9
            return {"focus": p}

    mask = np.zeros((8, 8), np.uint8)
    mask[:, :4] = 1
    data = [{"image": np.zeros((8, 8, 3), np.uint8), "mask": mask, "name": "a"}]
    res = evaluate_sources({"half": Half()}, {"set": data}, metrics={"preset": "btbnet", "precision_recall": True,
                                                                     "pr_curve": True}, progress=False)
    row = res.results["half"]["set"]
    assert row["precision"] == row["recall"] == row["fbeta"] == 1.0 and "pr_curve" not in row
