"""Mixed precision and torch.compile switches: they run for every model family and compile keeps
checkpoint key names (no ``_orig_mod.`` prefix)."""

from __future__ import annotations

import pytest
import torch

from dbd_lightning.runs.task_builder import build_task
from dbd_lightning.train import run
from dbd_lightning.utils.checkpoint import load_state_dict, load_weights
from dbd_lightning.utils.compile import compile_net

from .helpers import TINY, compose_cfg

FDR = ["++trainer.fast_dev_run=true", "logger=none", "data=synthetic", *TINY]
# one small config per model family (BTBNet at CPU widths, as in test_configs)
FAMILIES = {
    "dffnet": ["model=dffnet_small"],
    "pdnet": ["model=pdnet_small"],
    "ddnet": ["model=ddnet_small"],
    "btbnet": ["model=btbnet_small", "model.net.widths=[4,8,8,16,16]", "model.net.ffic_channels=[8,8,4,1]"],
    # R-DFFNet (depth heads + response distillation) and D-DFFNet stage 2 (DistillationTask: projectors,
    # feature loss, two frozen teachers held by the Distillation callback)
    "rdffnet": ["experiment=rdffnet", "model.net.encoder=resnet18"],
    "ddffnet_stage2": ["experiment=ddffnet_stage2", "model=dffnet_small"],
}
PATCH_NETS = ["karaali_bnet_net", "karaali_enet_net"]  # Karaali's patch classifiers (the networks alone)


def test_bf16_mixed_on_cpu_trains_and_evaluates(tmp_path):
    cfg = compose_cfg(tmp_path, [*FAMILIES["dffnet"], *FDR, "trainer.precision=bf16-mixed"])
    metrics = run(cfg)
    assert all(torch.isfinite(torch.tensor(metrics[k])) for k in ("train/loss", "test/synthetic/mae"))
    assert 0 <= metrics["test/synthetic/mae"] <= 1


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_bf16_mixed_every_family(tmp_path, family):
    metrics = run(compose_cfg(tmp_path, [*FAMILIES[family], *FDR, "trainer.precision=bf16-mixed"]))
    assert torch.isfinite(torch.tensor(metrics["train/loss"])) and 0 <= metrics["test/synthetic/mae"] <= 1


@pytest.mark.parametrize("model", [*sorted(FAMILIES), *PATCH_NETS])
def test_compile_keeps_state_dict_keys_for_every_family(tmp_path, model):
    overrides = FAMILIES.get(model, [f"model={model}"])
    cfg = compose_cfg(tmp_path, [*overrides, "logger=none", *TINY])
    task = build_task(cfg)
    keys = list(task.state_dict())
    assert compile_net(task, {"enabled": True, "backend": "eager"})
    assert list(task.state_dict()) == keys and not any("_orig_mod" in k for k in keys)
    assert not compile_net(task, {"enabled": False})


@pytest.mark.slow
def test_compiled_run_writes_checkpoints_that_load_into_a_plain_model(tmp_path):
    # backend=eager: Dynamo traces and guards the graph (the part that could rename keys) without
    # inductor's C++ build; the slow test below uses inductor
    cfg = compose_cfg(tmp_path, [*FAMILIES["dffnet"], "logger=none", *TINY, "trainer.max_epochs=1",
                                 "compile.enabled=true", "compile.backend=eager", "~callbacks.progress_bar",
                                 "trainer.enable_progress_bar=false"])
    metrics = run(cfg)
    assert torch.isfinite(torch.tensor(metrics["train/loss"]))
    state = load_state_dict(tmp_path / "checkpoints" / "last.ckpt")
    assert not any("_orig_mod" in k for k in state)
    load_weights(build_task(cfg), tmp_path / "checkpoints" / "last.ckpt", strict=True)


@pytest.mark.slow
def test_inductor_compile_and_bf16_together(tmp_path):
    cfg = compose_cfg(tmp_path, [*FAMILIES["dffnet"], *FDR, "compile.enabled=true", "trainer.precision=bf16-mixed"])
    metrics = run(cfg)
    assert torch.isfinite(torch.tensor(metrics["train/loss"]))
