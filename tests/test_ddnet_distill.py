"""DD training: response depth distillation loss, frozen teacher, no-teacher ablation, tiny overfit,
and DD's evaluation-notebook convention reproduced from an 8-bit prediction set."""

from __future__ import annotations

import hydra
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dbd_lightning.metrics import build_dbd_metrics
from dbd_lightning.models.ddffnet.callback import Distillation
from dbd_lightning.models.ddffnet.depth_losses import ResponseDepthDistillationLoss, minmax_normalize
from dbd_lightning.models.ddffnet.teachers import DepthTeacher, NoTeacher
from dbd_lightning.models.ddnet import DDNet
from dbd_lightning.runs.task_builder import build_task
from dbd_lightning.utils.checkpoint import load_state_dict
from dbd_lightning.utils.config import build_datamodule, instantiate_dict

from .helpers import TINY, compose_cfg

DD_SMALL = ["experiment=ddnet_synthetic", "logger=none", *TINY, "~callbacks.model_summary", "~callbacks.progress_bar",
            "~callbacks.lr_monitor", "trainer.enable_progress_bar=false", "callbacks.model_checkpoint.monitor=null"]


def _dd_loss(**kw) -> ResponseDepthDistillationLoss:
    return ResponseDepthDistillationLoss(edge_loss=None, edge_weight=0.0, depth_kind="l2", normalize="minmax", **kw)


def test_dd_loss_is_bce_on_defocus_plus_l2_on_normalised_depth():
    torch.manual_seed(0)
    net = DDNet("resnet18")
    image = torch.randn(2, 3, 64, 64)
    out = net(image)
    mask = (torch.rand(2, 1, 64, 64) > 0.5).float()
    raw = torch.rand(2, 1, 64, 64) * 7 + 3  # a teacher of arbitrary scale (MiDaS-like)
    terms = _dd_loss()(out, {"mask": mask, "teacher": {"depth": {"depth": raw}}})

    def up(x):
        return F.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False)

    target = (raw - raw.amin(dim=(1, 2, 3), keepdim=True)) / (raw.amax(dim=(1, 2, 3), keepdim=True)
                                                           - raw.amin(dim=(1, 2, 3), keepdim=True))
    bce = F.binary_cross_entropy_with_logits(out["logits"], mask)
    side_bce = sum(F.binary_cross_entropy_with_logits(
        F.interpolate(s, size=(64, 64), mode="bilinear", align_corners=True), mask) for s in out["side_logits"])
    depth = ((out["depth"] - target) ** 2).mean()
    side_depth = sum(((up(d) - target) ** 2).mean() for d in out["side_depth"])
    assert torch.allclose(terms["loss"], bce + side_bce + depth + side_depth, rtol=1e-5)
    assert torch.allclose(terms["depth"], depth, rtol=1e-5) and torch.allclose(terms["side_depth"], side_depth, rtol=1e-5)
    assert torch.allclose(minmax_normalize(raw), target, atol=1e-6)
    # with the depth weights at 0, side depth maps 1-4 still get gradients from BCE through the SAB
    # (it reads cat[side, depth]); the last stage's depth head has no SAB and gets none
    net.zero_grad()
    no_depth = _dd_loss(depth_weight=0.0, depth_side_weights=0.0)
    no_depth(out, {"mask": mask, "teacher": {"depth": {"depth": raw}}})["loss"].backward(retain_graph=True)
    grads = [float(h.weight.grad.abs().sum()) for h in net.depth_heads]
    assert all(g > 0 for g in grads[:4]) and grads[4] == 0 and net.fuse_depth.weight.grad.abs().sum() == 0
    net.zero_grad()
    terms["loss"].backward()
    assert all(float(h.weight.grad.abs().sum()) > 0 for h in [*net.depth_heads, net.fuse_depth])


def test_no_teacher_gives_the_detection_terms_only():
    torch.manual_seed(0)
    out = DDNet("resnet18")(torch.randn(2, 3, 64, 64))
    mask = (torch.rand(2, 1, 64, 64) > 0.5).float()
    teacher = NoTeacher()
    assert teacher.channels == [] and not list(teacher.parameters())
    loss = _dd_loss()
    terms = loss(out, {"mask": mask, "teacher": {"depth": teacher(torch.zeros(2, 3, 64, 64))}})
    assert "depth" not in terms and torch.allclose(terms["loss"], terms["bce"] + terms["side_bce"])
    # a teacher that gives no depth key at all (MiDaS without hub_dir) is an error, not a silent ablation
    with pytest.raises(KeyError, match="no depth map"):
        loss(out, {"mask": mask, "teacher": {"depth": {"features": []}}})


def _snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_dd_teacher_stays_frozen_while_the_student_trains(tmp_path):
    cfg = compose_cfg(tmp_path, [*DD_SMALL, "trainer.max_epochs=1", "data.train_length=4"])
    dm, task = build_datamodule(cfg), build_task(cfg)
    callbacks = instantiate_dict(cfg.callbacks)
    trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=False)
    distill = next(c for c in callbacks if isinstance(c, Distillation))
    teacher = distill.teachers["depth"]
    assert isinstance(teacher, DepthTeacher) and isinstance(task.net, DDNet)
    before, student = _snapshot(teacher), _snapshot(task.net)
    seen = []
    task.loss.register_forward_hook(lambda m, i, o: seen.append(sorted(o)) if m.training else None)
    trainer.fit(task, datamodule=dm)
    assert trainer.global_step == 2
    assert all("depth" in keys and "side_depth" in keys for keys in seen) and len(seen) == 2
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    assert all(torch.equal(teacher.state_dict()[k], v) for k, v in before.items())  # BN statistics included
    assert any(not torch.equal(task.net.state_dict()[k], v) for k, v in student.items())
    teacher_ids = {id(p) for p in teacher.parameters()}
    assert not teacher_ids & {id(p) for o in trainer.optimizers for g in o.param_groups for p in g["params"]}
    state = load_state_dict(tmp_path / "checkpoints" / "last.ckpt")
    assert set(state) == set(task.state_dict()) and not any(k.startswith("teacher") for k in state)


def test_teacher_none_config_trains_without_depth_terms(tmp_path):
    cfg = compose_cfg(tmp_path, [*DD_SMALL, "teacher/depth=none", "++trainer.fast_dev_run=true"])
    dm, task = build_datamodule(cfg), build_task(cfg)
    callbacks = instantiate_dict(cfg.callbacks)
    assert isinstance(next(c for c in callbacks if isinstance(c, Distillation)).teachers["depth"], NoTeacher)
    seen = []
    task.loss.register_forward_hook(lambda m, i, o: seen.append(sorted(o)) if m.training else None)
    trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=False)
    trainer.fit(task, datamodule=dm)
    assert seen and all("depth" not in keys for keys in seen)


def test_tiny_overfit_defocus_and_depth():
    torch.manual_seed(0)
    net = DDNet("resnet18")
    image = torch.randn(4, 3, 32, 32)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 32), torch.linspace(0, 1, 32), indexing="ij")
    mask = torch.stack([(xx > 0.5), (yy > 0.3), (xx + yy > 1), ((xx - .5) ** 2 + (yy - .5) ** 2 < .1)])[:, None].float()
    depth = torch.stack([xx, yy, 1 - xx, (xx - .5) ** 2 + (yy - .5) ** 2])[:, None]
    batch = {"mask": mask, "teacher": {"depth": {"depth": depth}}}
    loss_fn = _dd_loss()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    first = None
    for _ in range(30):
        terms = loss_fn(net(image), batch)
        opt.zero_grad()
        terms["loss"].backward()
        opt.step()
        first = first if first is not None else {k: float(v.detach()) for k, v in terms.items()}
    last = {k: float(v.detach()) for k, v in terms.items()}
    assert last["loss"] < 0.3 * first["loss"]
    for key in ("bce", "side_bce", "depth", "side_depth"):  # every term, the fused maps included
        assert last[key] < 0.7 * first[key], (key, first[key], last[key])


# -------------------------------------------- DD's evaluation notebook, from an 8-bit prediction set
def _notebook(preds_u8: list[np.ndarray], gts: list[np.ndarray]) -> tuple[float, float]:
    """DD's eval notebook: MAE per image on the float maps; pred and GT (x255, uint8) binarised by
    ``x > min(1.5 * mean(x), 255)``; precision / recall over all pixels pooled; F with beta^2 = 0.3."""
    mae, tp, fp, fn = [], 0, 0, 0
    for p8, g in zip(preds_u8, gts, strict=True):
        pf = p8.astype(np.float64) / 255.0
        mae.append(np.abs(g.astype(np.float64) - pf).sum() / g.size)
        pred = np.uint8(pf * 255)
        gt = np.uint8(g * 255)
        pb = pred > min(1.5 * np.mean(pred), 255)
        gb = gt > min(1.5 * np.mean(gt), 255)
        tp += int((pb & gb).sum())
        fp += int((pb & ~gb).sum())
        fn += int((~pb & gb).sum())
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    return float(np.mean(mae)), 1.3 * precision * recall / (0.3 * precision + recall)


def test_dd_metrics_config_reproduces_the_notebook_from_png_predictions(tmp_path):
    import cv2

    cfg = compose_cfg(tmp_path, ["metrics=ddnet"])
    rng = np.random.default_rng(0)
    preds, gts, ours = [], [], build_dbd_metrics(**dict(cfg.metrics))
    for i, (h, w) in enumerate([(40, 56), (33, 47), (64, 64), (20, 90)]):
        yy, xx = np.mgrid[0:h, 0:w]
        gt = ((xx / w + 0.3 * rng.random()) > 0.6).astype(np.uint8)  # in-focus = 1
        noisy = np.clip(gt * 0.7 + rng.random((h, w)) * 0.45, 0, 1)
        p8 = (noisy * 255).astype(np.uint8)
        cv2.imwrite(str(tmp_path / f"{i}.png"), p8)  # the prediction set: 8-bit PNGs
        preds.append(p8)
        gts.append(gt)
        pred = torch.from_numpy(cv2.imread(str(tmp_path / f"{i}.png"), cv2.IMREAD_GRAYSCALE)).float() / 255.0
        ours.update([pred], [torch.from_numpy(gt)])
    values = ours.compute()
    mae, fbeta = _notebook(preds, gts)
    assert float(values["mae"]) == pytest.approx(mae, abs=1e-6)
    assert float(values["fbeta"]) == pytest.approx(fbeta, abs=1e-6)
    # and the D-DFFNet convention really is different on the same set
    other = build_dbd_metrics(preset="ddffnet")
    for p8, g in zip(preds, gts, strict=True):
        other.update([torch.from_numpy(p8).float() / 255.0], [torch.from_numpy(g)])
    assert abs(float(other.compute()["fbeta"]) - fbeta) > 1e-3
