"""tasks.base.Task (optimizer, scheduler, shared logging) and build_task's per-signature injection."""

import functools

import pytest
import torch
from torch import nn

from dbd_lightning.runs.task_builder import build_task
from dbd_lightning.tasks.base import Task

from .helpers import compose_cfg


def test_optimizer_gets_param_groups_frozen_parameters_left_out_and_scheduler_interval():
    net = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    net[1].bias.requires_grad_(False)
    task = Task(net, optimizer=functools.partial(torch.optim.SGD, lr=0.1),
                scheduler=functools.partial(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5),
                scheduler_interval="step", param_groups=[{"match": "0.*", "lr": 0.01}])
    out = task.configure_optimizers()
    groups = out["optimizer"].param_groups
    assert [g["lr"] for g in groups] == [0.01, 0.1]
    assert [len(g["params"]) for g in groups] == [2, 1]  # 0.weight 0.bias | 1.weight (1.bias frozen)
    assert out["lr_scheduler"]["interval"] == "step"
    out["optimizer"].step()
    out["lr_scheduler"]["scheduler"].step()
    assert [g["lr"] for g in groups] == [0.005, 0.05]


def test_without_scheduler_the_optimizer_alone_is_returned():
    task = Task(nn.Linear(2, 1), optimizer=functools.partial(torch.optim.Adam, lr=1e-3))
    opt = task.configure_optimizers()
    assert isinstance(opt, torch.optim.Adam) and opt.param_groups[0]["lr"] == 1e-3


def test_build_task_gives_the_loss_and_metrics_groups_only_to_tasks_that_take_them(tmp_path):
    broken_loss = ["loss._target_=dbd_lightning.no_such_module.Loss"]
    # DepthTask has its own depth_loss: the detection loss group is not built at all
    depth = build_task(compose_cfg(tmp_path, ["model=depthnet_small", *broken_loss]))
    assert type(depth).__name__ == "DepthTask" and not hasattr(depth, "loss")
    with pytest.raises(Exception, match="no_such_module"):  # a DetectionTask does build it
        build_task(compose_cfg(tmp_path, ["model=dffnet_small", *broken_loss]))
    det = build_task(compose_cfg(tmp_path, ["model=dffnet_small", "loss=bce", "loss.main_weight=1.7", "metrics=ddnet"]))
    assert type(det.loss).__name__ == "DeepSupervisionLoss" and det.loss.edge_loss is None
    assert det.loss.main_weight == 1.7 and det.metric_convention["preset"] == "dd"
