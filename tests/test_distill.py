"""D-DFFNet stage 2: frozen teachers, projectors, feature loss (eq. 2-3), beta schedules (eq. 9)."""

from __future__ import annotations

import math

import hydra
import lightning as L
import pytest
import torch

from dbd_lightning.models.ddffnet.callback import Distillation
from dbd_lightning.models.ddffnet.depth_net import DepthNet
from dbd_lightning.models.ddffnet.feature_loss import FeatureDistillationLoss, pairwise_l2
from dbd_lightning.models.ddffnet.projectors import ProjectorBank, projector
from dbd_lightning.models.ddffnet.schedules import beta_at
from dbd_lightning.models.ddffnet.teachers import DefocusTeacher, DepthTeacher, FrozenTeacher
from dbd_lightning.models.dffnet import DFFNet
from dbd_lightning.runs.task_builder import build_task
from dbd_lightning.train import run
from dbd_lightning.utils.checkpoint import load_state_dict, load_weights
from dbd_lightning.utils.config import build_datamodule, instantiate_dict

from .helpers import TINY, compose_cfg

STAGE2 = ["experiment=ddffnet_stage2", "model=dffnet_small", "logger=none", "data=synthetic", *TINY,
          "~callbacks.model_summary", "~callbacks.progress_bar", "~callbacks.lr_monitor", "trainer.enable_progress_bar=false"]


# ------------------------------------------------------------------ beta (eq. 9)
@pytest.mark.parametrize(("epoch", "paper", "authors"), [
    (0, 3.0, 3.0),
    (15, 3.0, 0.0),              # paper: epoch <= 15 -> 3; code: 3*(15-15)/60 = 0
    (16, 3 * 1 / 75, 3 * 1 / 60),
    (45, 3 * 30 / 75, 3 * 30 / 60),  # 1.2 and 1.5
    (74, 3 * 59 / 75, 3 * 59 / 60),  # 2.36 and 2.95
])
def test_beta_schedules_hand_computed(epoch, paper, authors):
    assert beta_at("paper", epoch, last_epoch=75) == pytest.approx(paper)
    assert beta_at("authors_code", epoch, last_epoch=75) == pytest.approx(authors)
    assert beta_at("constant", epoch) == 3.0


def test_unknown_beta_schedule_fails_early():
    with pytest.raises(ValueError, match="unknown beta schedule"):
        Distillation({}, beta_schedule="cosine")


# ---------------------------------------------------------- feature loss (eq. 2-3)
def test_feature_loss_matches_a_hand_computation():
    torch.manual_seed(1)
    s = [torch.randn(2, 3, 4, 5), torch.randn(2, 6, 2, 3)]
    t = [torch.randn(2, 3, 4, 5), torch.randn(2, 6, 2, 3)]
    expected = 0.0
    for sl, tl in zip(s, t, strict=True):
        b, c, h, w = sl.shape
        acc = 0.0
        for i in range(b):
            for y in range(h):
                for x in range(w):
                    u, v = sl[i, :, y, x], tl[i, :, y, x]
                    un = u / max(float(u.norm()), 1e-6)
                    vn = v / max(float(v.norm()), 1e-6)
                    acc += float(((un - vn) ** 2).sum())
        expected += acc / (b * h * w)
    total, per = FeatureDistillationLoss()({"depth": s}, {"depth": t})
    assert float(total) == pytest.approx(expected, rel=1e-5)
    assert float(per["depth"]) == pytest.approx(expected, rel=1e-5)
    # two teachers are summed (eq. 3); identical features give 0; range is [0, 4] per level
    total2, _ = FeatureDistillationLoss()({"a": s, "b": s}, {"a": t, "b": s})
    assert float(total2) == pytest.approx(expected, rel=1e-5)
    assert 0 <= float(pairwise_l2(s[0], -s[0])) == pytest.approx(4.0, rel=1e-5)


def test_feature_loss_detaches_teacher_and_resizes_it():
    s = torch.randn(2, 4, 8, 8, requires_grad=True)
    t = torch.randn(2, 4, 16, 16, requires_grad=True)
    total, _ = FeatureDistillationLoss()({"x": [s]}, {"x": [t]})
    total.backward()
    assert s.grad is not None and t.grad is None


# ------------------------------------------------------------------- projectors
def test_projector_init_and_shapes():
    conv = projector(256, 512)
    assert conv.kernel_size == (1, 1) and conv.bias is None
    assert tuple(conv.weight.shape) == (512, 256, 1, 1)
    assert float(conv.weight.detach().std()) == pytest.approx(math.sqrt(2.0 / (256 + 512)), rel=0.05)  # xavier normal
    bank = ProjectorBank([64, 128, 256, 512], {"defocus": None, "depth": [256, 512, 1024, 2048]})
    assert [c.out_channels for c in bank["defocus"]] == [64, 128, 256, 512]      # C -> C
    assert bank.teacher_channels("depth") == [256, 512, 1024, 2048]            # C_s -> C_t
    feats = [torch.randn(1, c, 4, 4) for c in (64, 128, 256, 512)]
    out = bank.project(feats)
    assert [o.shape[1] for o in out["depth"]] == [256, 512, 1024, 2048]


# --------------------------------------------------------------------- teachers
def test_frozen_teacher_refuses_train_mode():
    teacher = DepthTeacher(DepthNet("resnet18"))
    teacher.train()
    assert not teacher.training and not any(m.training for m in teacher.modules())
    assert not any(p.requires_grad for p in teacher.parameters())


def test_defocus_teacher_loads_net_keys_of_a_lightning_checkpoint(tmp_path):
    net = DFFNet("resnet18")
    torch.save({"state_dict": {f"net.{k}": v for k, v in net.state_dict().items()}}, tmp_path / "s1.ckpt")
    teacher = DefocusTeacher(DFFNet("resnet18"), ckpt=str(tmp_path / "s1.ckpt"))
    for k, v in net.state_dict().items():
        assert torch.equal(teacher.net.state_dict()[k], v)
    with pytest.raises(FileNotFoundError):
        DefocusTeacher(DFFNet("resnet18"), ckpt=str(tmp_path / "missing.ckpt"))


def test_load_weights_prefix_keeps_bare_state_dicts(tmp_path):
    net = DepthNet("resnet18")
    torch.save(net.state_dict(), tmp_path / "bare.pt")
    other = DepthNet("resnet18")
    load_weights(other, tmp_path / "bare.pt", prefix="net.")
    assert all(torch.equal(other.state_dict()[k], v) for k, v in net.state_dict().items())


# ------------------------------------------------------- training with teachers
def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _fit(cfg, **trainer_kw):
    datamodule = build_datamodule(cfg)
    task = build_task(cfg)
    callbacks = instantiate_dict(cfg.callbacks)
    trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=False, **trainer_kw)
    return task, callbacks, trainer, datamodule


def test_teachers_stay_frozen_and_out_of_optimizer_and_checkpoint(tmp_path):
    cfg = compose_cfg(tmp_path, [*STAGE2, "trainer.max_epochs=1", "data.train_length=6",
                                 "callbacks.model_checkpoint.monitor=null"])
    task, callbacks, trainer, dm = _fit(cfg)
    distill = next(c for c in callbacks if isinstance(c, Distillation))
    assert set(distill.teachers) == {"defocus", "depth"}
    before = {n: _snapshot(t) for n, t in distill.teachers.items()}
    assert any("running_mean" in k for k in before["defocus"])  # BN statistics are in the snapshot
    student_before = _snapshot(task.projectors)
    trainer.fit(task, datamodule=dm)
    assert trainer.global_step == 3
    for name, teacher in distill.teachers.items():
        assert not teacher.training and not any(m.training for m in teacher.modules())
        after = teacher.state_dict()
        for k, v in before[name].items():
            assert torch.equal(after[k], v), f"teacher {name} changed {k}"
    # the student side did train (projectors included)
    assert any(not torch.equal(task.projectors.state_dict()[k], v) for k, v in student_before.items())
    # no teacher parameter in any optimizer; projectors in their own constant group
    teacher_ids = {id(p) for t in distill.teachers.values() for p in t.parameters()}
    groups = [g for opt in trainer.optimizers for g in opt.param_groups]
    assert not teacher_ids & {id(p) for g in groups for p in g["params"]}
    proj = next(g for g in groups if g.get("name") == "projectors")
    assert proj["lr"] == pytest.approx(0.1) and proj["weight_decay"] == pytest.approx(5e-4)
    assert {id(p) for p in proj["params"]} == {id(p) for p in task.projectors.parameters()}
    net_group = next(g for g in groups if g.get("name") == "net")
    assert net_group["lr"] < 1e-4  # poly decayed after the epoch, projector group did not
    # checkpoint: student + projectors, no teacher
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    state = load_state_dict(ckpt)
    assert not any(k.startswith("teacher") for k in state)
    assert any(k.startswith("projectors.defocus.") for k in state) and any(k.startswith("net.") for k in state)
    assert set(state) == set(task.state_dict())
    n_teacher = sum(len(t.state_dict()) for t in distill.teachers.values())
    assert len(state) == len(task.state_dict()) and n_teacher > 0


class _RecordBeta(L.Callback):
    def __init__(self):
        self.seen: dict[int, float] = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.seen[trainer.current_epoch] = pl_module.beta
        assert "teacher" in batch and set(batch["teacher"]) == {"defocus", "depth"}


def test_resume_restores_beta(tmp_path):
    overrides = [*STAGE2, "data.train_length=2", "callbacks.distillation.switch_epoch=1",
                 "callbacks.distillation.last_epoch=4", "callbacks.model_checkpoint.monitor=null",
                 "trainer.num_sanity_val_steps=0", "++trainer.limit_val_batches=0"]
    cfg = compose_cfg(tmp_path, [*overrides, "trainer.max_epochs=2"])
    task, callbacks, trainer, dm = _fit(cfg)
    rec = _RecordBeta()
    trainer.callbacks.append(rec)
    trainer.fit(task, datamodule=dm)
    assert rec.seen == {0: 3.0, 1: 3.0}
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    assert ckpt.is_file()

    cfg2 = compose_cfg(tmp_path / "resume", [*overrides, "trainer.max_epochs=4"])
    task2, callbacks2, trainer2, dm2 = _fit(cfg2)
    task2.beta = -1.0  # a fresh module's value must not leak into the resumed epochs
    rec2 = _RecordBeta()
    trainer2.callbacks.append(rec2)
    trainer2.fit(task2, datamodule=dm2, ckpt_path=str(ckpt))
    assert rec2.seen == pytest.approx({2: 3 * (2 - 1) / 4, 3: 3 * (3 - 1) / 4})


def test_distillation_task_refuses_to_train_without_teachers(tmp_path):
    cfg = compose_cfg(tmp_path, STAGE2)
    task = build_task(cfg)
    batch = {"image": torch.randn(2, 3, 64, 64), "mask": torch.ones(2, 1, 64, 64)}
    with pytest.raises(RuntimeError, match="distillation callback"):
        task.training_step(batch, 0)


def test_callback_checks_projector_channels(tmp_path):
    cfg = compose_cfg(tmp_path, [*STAGE2, "model.teachers.depth=[1,2,3,4]", "++trainer.fast_dev_run=true"])
    with pytest.raises(ValueError, match="projectors map to"):
        run(cfg)


def test_stage2_fast_dev_run_through_train_run(tmp_path):
    cfg = compose_cfg(tmp_path, [*STAGE2, "++trainer.fast_dev_run=true"])
    metrics = run(cfg)
    assert {"train/feature", "train/feature_defocus", "train/feature_depth", "train/beta"} <= set(metrics)
    assert metrics["train/beta"] == 3.0 and "test/synthetic/fbeta" in metrics


def test_stage2_authors_code_switches(tmp_path):
    cfg = compose_cfg(tmp_path, ["experiment=ddffnet_stage2_authors_code", *TINY])
    assert cfg.callbacks.distillation.beta_schedule == "authors_code"
    assert cfg.callbacks.distillation.last_epoch == 75 and cfg.trainer.max_epochs == 74
    assert cfg.loss.main_weight == 1.1
    paper = compose_cfg(tmp_path, ["experiment=ddffnet_stage2", *TINY])
    assert paper.callbacks.distillation.beta_schedule == "paper"
    assert paper.callbacks.distillation.last_epoch == 75


def test_teacher_instances_are_frozen_teachers(tmp_path):
    cfg = compose_cfg(tmp_path, STAGE2)
    teachers = {k: hydra.utils.instantiate(v) for k, v in cfg.teacher.items()}
    assert isinstance(teachers["defocus"], DefocusTeacher) and isinstance(teachers["depth"], DepthTeacher)
    assert all(isinstance(t, FrozenTeacher) and not t.training for t in teachers.values())
    out = teachers["depth"](torch.randn(1, 3, 64, 64))
    assert [f.shape[1] for f in out["features"]] == [64, 128, 256, 512] and out["depth"].shape == (1, 1, 64, 64)
