"""PDNet, R-DFFNet, the depth teacher, VGG16 option and the two-stage pipeline."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from dbd_lightning.models.ddffnet.depth_losses import (
    DepthLoss,
    ResponseDepthDistillationLoss,
    depth_error,
    minmax_normalize,
)
from dbd_lightning.models.ddffnet.depth_net import DepthNet
from dbd_lightning.models.dffnet import DFFNet
from dbd_lightning.models.pdnet import PDNet
from dbd_lightning.models.rdffnet import RDFFNet
from dbd_lightning.pipelines.stages import run_pipeline, stage_overrides
from dbd_lightning.runs.resolver import find_checkpoint
from dbd_lightning.runs.task_builder import build_task
from dbd_lightning.train import run
from dbd_lightning.utils.checkpoint import load_state_dict

from .helpers import TINY, compose_cfg

FDR = ["++trainer.fast_dev_run=true", "logger=none", "data=synthetic"]


def test_pdnet_has_no_side_outputs_guidance_or_attention():
    net = PDNet("resnet18")
    out = net(torch.randn(2, 3, 64, 64))
    assert out["logits"].shape == (2, 1, 64, 64) and out["side_logits"] == []
    assert [f.shape[1] for f in out["features"]] == [64, 128, 256, 512]
    assert all(r.kernel_size == (1, 1) and r.bias is not None and r.out_channels == 32 for r in net.reduce)
    names = {type(m).__name__ for m in net.modules()}
    assert not {"RFB", "DFFM", "SideSpatialAttention"} & names


def test_rdffnet_output_shapes_and_shared_dffnet_weights():
    net = RDFFNet("resnet18")
    out = net(torch.randn(2, 3, 64, 64))
    assert out["logits"].shape == (2, 1, 64, 64) and out["depth"].shape == (2, 1, 64, 64)
    assert [tuple(s.shape[-2:]) for s in out["side_logits"]] == [(4, 4), (4, 4), (8, 8), (16, 16)]
    assert [tuple(s.shape) for s in out["side_depth"]] == [(2, 1, 4, 4), (2, 1, 4, 4), (2, 1, 8, 8), (2, 1, 16, 16)]
    assert 0 <= float(out["depth"].min()) and float(out["depth"].max()) <= 1
    assert net.depth_head.in_channels == 128 and all(h.in_channels == 32 for h in net.side_depth_heads)
    # the DFFNet part is unchanged: same keys, and the DBD logits equal a DFFNet's with the same weights
    dff = DFFNet("resnet18")
    extra = {k for k in net.state_dict() if "depth_head" in k}
    assert set(net.state_dict()) - extra == set(dff.state_dict())
    dff.load_state_dict({k: v for k, v in net.state_dict().items() if k not in extra})
    net.eval(), dff.eval()
    x = torch.randn(1, 3, 64, 64)
    assert torch.allclose(net(x)["logits"], dff(x)["logits"], atol=1e-6)


def test_response_depth_loss_eq10():
    torch.manual_seed(0)
    detection_only = ResponseDepthDistillationLoss(edge_loss=None, edge_weight=0.0)
    outputs = {"logits": torch.randn(2, 1, 8, 8), "side_logits": [torch.randn(2, 1, 4, 4)] * 4,
               "depth": torch.rand(2, 1, 8, 8), "side_depth": [torch.rand(2, 1, 8, 8) for _ in range(4)]}
    target = torch.rand(2, 1, 8, 8)
    batch = {"mask": (torch.rand(2, 1, 8, 8) > 0.5).float(), "teacher": {"depth": {"depth": target}}}
    terms = detection_only(outputs, batch)
    expected_depth = ((outputs["depth"] - target) ** 2).mean() + sum(((s - target) ** 2).mean()
                                                                       for s in outputs["side_depth"])
    base = terms["bce"] + terms["side_bce"]
    assert torch.allclose(terms["loss"], base + expected_depth, atol=1e-6)
    # out of training (validation) without a teacher: detection terms only
    detection_only.eval()
    val = detection_only(outputs, {"mask": batch["mask"]})
    assert "depth" not in val and torch.allclose(val["loss"], base)
    detection_only.train()
    with pytest.raises(RuntimeError, match="distillation callback"):
        detection_only(outputs, {"mask": batch["mask"]})


def test_depth_helpers():
    d = torch.tensor([[[[2.0, 4.0], [6.0, 10.0]]]])
    assert torch.allclose(minmax_normalize(d), torch.tensor([[[[0.0, 0.25], [0.5, 1.0]]]]))
    p, t = torch.full((1, 1, 2, 2), 0.5), torch.full((1, 1, 2, 2), 0.25)
    assert float(depth_error(p, t, "l1")) == pytest.approx(0.25)
    assert float(depth_error(p, t, "l2")) == pytest.approx(0.0625)
    d = math.log(0.5 + 1e-3) - math.log(1.0 + 1e-3)  # constant log-ratio: sqrt((1 - 0.85) d^2)
    assert float(depth_error(p, 2 * p, "silog")) == pytest.approx(math.sqrt(0.15) * abs(d), rel=1e-4)
    net = DepthNet("resnet18")
    out = net(torch.randn(2, 3, 64, 64))
    loss = DepthLoss("l1")(out, {"depth": torch.rand(2, 1, 64, 64)})
    assert loss["loss"].requires_grad and [f.shape[-1] for f in out["features"]] == [16, 8, 4, 2]


def test_vgg16_config_picks_four_levels_at_strides_4_to_32(tmp_path):
    cfg = compose_cfg(tmp_path, ["model=dffnet_vgg16", *TINY])
    task = build_task(cfg)
    assert task.net.encoder.reductions == [4, 8, 16, 32]
    assert task.net.encoder.channels == [256, 512, 512, 512]


def test_stage1_overrides_keep_shared_keys_only(tmp_path):
    stage1 = compose_cfg(tmp_path, ["experiment=ddffnet_paper"]).pipeline.stages[0]
    kept = stage_overrides(["experiment=ddffnet_table4", "model=pdnet", "loss=bce", "loss.main_weight=1.1",
                             "teacher.depth.ckpt=x.ckpt", "pipeline.stage1_loss=bce", "data.batch_size=2",
                             "++trainer.fast_dev_run=true", "model.net.dense_guidance=false",
                             "model.projector_lr=0.2", "callbacks.distillation.beta_schedule=authors_code",
                             "~callbacks.lr_monitor"], stage1)
    assert kept == ["data.batch_size=2", "++trainer.fast_dev_run=true", "model.net.dense_guidance=false",
                    "~callbacks.lr_monitor"]


def test_depthnet_config_trains_and_its_checkpoint_feeds_the_depth_teacher(tmp_path):
    depth_dir = tmp_path / "depth"
    cfg = compose_cfg(depth_dir, ["model=depthnet_small", "logger=none", "data=synthetic", *TINY,
                                  "trainer.max_epochs=1", "trainer.num_sanity_val_steps=0"])
    metrics = run(cfg)
    assert {"val/synthetic/mae", "test/synthetic/rmse", "train/depth_l1"} <= set(metrics)
    ckpt = find_checkpoint(depth_dir)
    assert ckpt is not None
    from dbd_lightning.models.ddffnet.teachers import DepthTeacher

    teacher = DepthTeacher(DepthNet("resnet18"), ckpt=str(ckpt))
    state = load_state_dict(ckpt)
    assert all(torch.equal(teacher.net.state_dict()[k], state[f"net.{k}"]) for k in teacher.net.state_dict())


def test_two_stage_pipeline_passes_the_stage1_checkpoint(tmp_path):
    cfg = compose_cfg(tmp_path, ["experiment=ddffnet_paper", "model=dffnet_small", "logger=none",
                                 "data=synthetic", *TINY, "trainer.max_epochs=1", "trainer.num_sanity_val_steps=0",
                                 "~callbacks.lr_monitor"])
    metrics = run(cfg)
    assert "stage1/test/synthetic/fbeta" in metrics and "test/synthetic/fbeta" in metrics
    assert "train/feature_defocus" in metrics
    ckpt = Path((tmp_path / "stage1_checkpoint.txt").read_text().strip())
    assert ckpt.is_file() and ckpt.parent == tmp_path / "stage1" / "checkpoints"
    assert (tmp_path / "stage2" / "checkpoints" / "last.ckpt").is_file()
    assert (tmp_path / "metrics.json").is_file()
    resolved = OmegaConf.load(tmp_path / "stage2" / "config_resolved.yaml")
    assert resolved.teacher.defocus.ckpt == str(ckpt) and "pipeline" not in resolved
    assert resolved.callbacks.distillation.teachers.defocus.ckpt == str(ckpt)
    s1 = (tmp_path / "stage1" / "config_resolved.yaml").read_text()
    assert "DistillationTask" not in s1 and "encoder: resnet18" in s1


@pytest.mark.parametrize("experiment", ["rdffnet", "ddffnet_table6"])
def test_family_experiments_fast_dev_run_small(tmp_path, experiment):
    cfg = compose_cfg(tmp_path, [f"experiment={experiment}", "model.net.encoder=resnet18", *FDR, *TINY])
    metrics = run(cfg)
    assert "test/synthetic/fbeta" in metrics
    if experiment == "rdffnet":
        assert {"train/depth", "train/side_depth"} <= set(metrics)


FIVE_TESTS = ["cuhk_te1", "dut_te", "ctcug", "ebd", "ebd1305"]


@pytest.mark.parametrize("experiment,data,tests", [
    ("ddffnet_table1", "cuhk_tr1_all_tests", FIVE_TESTS),
    ("rdffnet_table1", "cuhk_tr1_all_tests", FIVE_TESTS),
    ("ddffnet_table2", "cuhk_tr1_dut_tr_all_tests", FIVE_TESTS),
    ("ddffnet_table3", "cuhk_tr2_dut_tr_all_tests", ["cuhk_te2", "dut_te", "ctcug"]),
])
def test_paper_table_configs_use_the_papers_splits_in_both_stages(tmp_path, experiment, data, tests):
    cfg = compose_cfg(tmp_path, [f"experiment={experiment}"])
    assert cfg.data.name == data and list(cfg.data.datamodule.test) == tests
    train_sets = {"cuhk_tr1_all_tests": ["cuhk_tr1"], "cuhk_tr1_dut_tr_all_tests": ["cuhk_tr1", "dut_tr"],
                  "cuhk_tr2_dut_tr_all_tests": ["cuhk_tr2", "dut_tr"]}[data]
    assert list(cfg.data.datamodule.train) == train_sets
    if experiment.startswith("rdffnet"):
        assert cfg.model.net._target_.endswith("RDFFNet") and not cfg.get("pipeline")
        return
    # the data choice was made by the experiment config, not the command line: stage 1 must get it too
    seen = []
    run_pipeline(cfg, lambda c: seen.append(c) or {})
    assert [c.data.name for c in seen] == [data, data]
    assert "DistillationTask" not in seen[0].model._target_ and seen[1].model._target_.endswith("DistillationTask")
