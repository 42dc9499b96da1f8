"""CUHK TR-1 as a training source: the fixed hold-out, a TR-1-only import, the real-data recipe's
config, initialisation through the checkpoint resolver, and (with ../shared) the real 604 pairs."""

from __future__ import annotations

import hashlib
import os
import shutil

import numpy as np
import pytest
import torch

from dbd_lightning.data.benchmarks import CUHK
from dbd_lightning.data.benchmarks.splits import cuhk_te1_entries
from dbd_lightning.data.prepare import prepare
from dbd_lightning.runs.task_builder import build_task
from dbd_lightning.train import run
from dbd_lightning.utils.errors import CheckpointError

from .benchmark_trees import make_cuhk
from .helpers import REPO, compose_cfg

SHARED_TR1 = REPO.parent / "shared" / "data" / "cuhk_tr1"
needs_tr1 = pytest.mark.skipif(not (SHARED_TR1 / "image").is_dir(),
                               reason="the real CUHK-TR-1 pairs (../shared/data/cuhk_tr1) are not on this machine")

#: the held-out part of TR-1 (holdout_size=60, holdout_seed=0): pinned, so the validation set can never
#: change silently between runs, machines or versions
HOLDOUT_FIRST = ["out_of_focus0013", "out_of_focus0019", "out_of_focus0030", "out_of_focus0041", "out_of_focus0050"]
HOLDOUT_SHA1 = "63ea65eb36b39308200e89d7853853c85ab22e5d"


def _stems(ds) -> list[str]:
    return sorted(p.stem.lower() for p, _ in ds.pairs)


@pytest.fixture(scope="module")
def tr1_only_root(tmp_path_factory):
    """A CUHK tree holding TR-1 only (the 604 pairs, as distributed without TE-1)."""
    root = tmp_path_factory.mktemp("tr1only")
    make_cuhk(root / "CUHK", motion=0)
    te1 = {name for _, name in cuhk_te1_entries()}
    for folder in ("image", "gt"):
        for p in (root / "CUHK" / folder).iterdir():
            if p.stem.lower() in te1:
                p.unlink()
    return root


def test_holdout_is_fixed_disjoint_and_complete(tr1_only_root):
    cuhk = tr1_only_root / "CUHK"
    tr1, train, val = (CUHK(cuhk, split=s) for s in ("tr1", "tr1_train", "tr1_val"))
    assert (len(tr1), len(train), len(val)) == (604, 544, 60)
    assert train.issues == val.issues == []
    assert not set(_stems(train)) & set(_stems(val))
    assert set(_stems(train)) | set(_stems(val)) == set(_stems(tr1))
    names = _stems(val)
    assert names[:5] == HOLDOUT_FIRST
    assert hashlib.sha1(" ".join(names).encode()).hexdigest() == HOLDOUT_SHA1
    other = CUHK(cuhk, split="tr1_val", holdout_seed=1)
    assert len(other) == 60 and _stems(other) != names
    assert len(CUHK(cuhk, split="tr1_val", holdout_size=100)) == 100
    with pytest.raises(ValueError, match="holdout_size"):
        CUHK(cuhk, split="tr1_val", holdout_size=0)


def test_holdout_does_not_depend_on_te1_being_present(tmp_path, tr1_only_root):
    full = make_cuhk(tmp_path / "CUHK", motion=0)
    assert _stems(CUHK(full, split="tr1_val")) == _stems(CUHK(tr1_only_root / "CUHK", split="tr1_val"))


def test_holdout_refuses_a_partial_tr1(tmp_path):
    part = make_cuhk(tmp_path / "CUHK", n=300, motion=0)
    ds = CUHK(part, split="tr1_val")
    assert len(ds) == 0 and [i.kind for i in ds.issues][0] == "count"
    assert "drawn from all 604" in ds.issues[0].message


def test_absent_te1_is_optional_only_when_asked(tr1_only_root):
    cuhk = tr1_only_root / "CUHK"
    optional = CUHK(cuhk, split="te1", optional=True)
    assert optional.absent and optional.issues == []
    required = CUHK(cuhk, split="te1")
    assert not required.absent and {i.kind for i in required.issues} == {"split_list", "count"}


def test_partly_present_te1_is_still_an_error(tmp_path):
    root = make_cuhk(tmp_path / "CUHK", motion=0)
    first = sorted(name for _, name in cuhk_te1_entries())[0]
    for folder in ("image", "gt"):
        for p in (root / folder).iterdir():
            if p.stem.lower() == first:
                p.unlink()
    ds = CUHK(root, split="te1", optional=True)
    assert not ds.absent and len(ds) == 99 and "1 image(s) of the TE-1 list" in ds.issues[0].message


def test_prepare_reports_a_tr1_only_import_as_such(tmp_path, tr1_only_root):
    code, report = prepare("cuhk", tr1_only_root / "CUHK", tmp_path / "data")
    assert code == 0, report
    assert "604 of CUHK-TR-1; TE-1 absent" in report and "expected 704" not in report


TINY_REAL = ["data.image_size=[32,32]", "data.batch_size=2", "data.eval_batch_size=2", "data.num_workers=0",
             "model=dffnet_small", "logger=none", "++trainer.fast_dev_run=true"]


def test_cuhk_tr1_config_validates_on_the_holdout_and_says_te1_is_absent(tmp_path, tr1_only_root, capsys):
    cfg = compose_cfg(tmp_path, ["data=cuhk_tr1", f"data.root={tr1_only_root}", *TINY_REAL])
    assert cfg.data.monitor == "val/cuhk_tr1_val/mae"
    assert list(cfg.data.datamodule.val) == ["cuhk_tr1_val"]
    assert "cuhk_te1" not in cfg.data.datamodule.val  # the test split never chooses anything
    metrics = run(cfg)
    out = capsys.readouterr().out
    assert out.count("test set 'cuhk_te1' is not on disk") == 1
    assert "test/cuhk_tr1_val/mae" in metrics and not any("cuhk_te1" in k for k in metrics)


def test_cuhk_tr1_config_tests_on_te1_when_it_is_there(tmp_path):
    root = tmp_path / "data"
    make_cuhk(root / "CUHK", motion=0)
    metrics = run(compose_cfg(tmp_path / "run", ["data=cuhk_tr1", f"data.root={root}", *TINY_REAL]))
    assert {"test/cuhk_tr1_val/mae", "test/cuhk_te1/mae", "val/cuhk_tr1_val/mae"} <= set(metrics)


def test_paper_protocol_config_keeps_te1_as_validation(tmp_path):
    cfg = compose_cfg(tmp_path, ["data=cuhk_tr1_paper"])
    assert list(cfg.data.datamodule.train) == ["cuhk_tr1"] and cfg.data.monitor == "val/cuhk_te1/mae"


# ---- initialisation through the checkpoint resolver ---------------------------------------------------
def test_init_ckpt_zoo_loads_the_released_weights(tmp_path):
    from safetensors.torch import load_file

    from dbd_lightning.zoo import WEIGHTS_DIR

    cfg = compose_cfg(tmp_path, ["experiment=dffnet_lite_cuhk", "model.net.pretrained=false"])
    assert cfg.model.net.init_ckpt == "zoo:dffnet_lite0_synth"
    task = build_task(cfg)
    released = load_file(WEIGHTS_DIR / "dffnet_lite0_synth.safetensors")
    own = task.net.state_dict()
    assert set(own) == set(released)
    for key in list(released)[:: max(1, len(released) // 25)]:
        assert torch.equal(own[key], released[key].to(own[key].dtype)), key


def test_init_ckpt_from_a_run_folder_and_a_mismatch(tmp_path):
    from dbd_lightning.runs.resolver import find_checkpoint
    from dbd_lightning.utils.checkpoint import load_state_dict

    base = ["model=dffnet_small", "data=synthetic", "data.image_size=[32,32]", "data.render_size=[32,32]",
            "data.batch_size=2", "data.eval_batch_size=2", "data.num_workers=0", "data.train_length=4",
            "data.val_length=2", "data.test_length=2", "logger=none", "trainer.max_epochs=1", "test=false"]
    run_dir = tmp_path / "first"
    run(compose_cfg(run_dir, base))
    (run_dir / ".hydra").mkdir(exist_ok=True)
    (run_dir / ".hydra" / "config.yaml").write_text((run_dir / "config_resolved.yaml").read_text())
    task = build_task(compose_cfg(tmp_path / "second", [*base, f"model.net.init_ckpt={run_dir}"]))
    saved = load_state_dict(find_checkpoint(run_dir, "best"))
    key = next(k for k in task.net.state_dict() if k.endswith("weight"))
    assert torch.equal(task.net.state_dict()[key], saved[f"net.{key}"])
    with pytest.raises(CheckpointError, match="does not match the model"):
        build_task(compose_cfg(tmp_path / "third", ["experiment=dffnet_lite_cuhk", "model.net.pretrained=false",
                                                    f"model.net.init_ckpt={run_dir}"]))


# ---- the real 604 pairs (../shared) --------------------------------------------------------------------
@needs_tr1
def test_real_tr1_imports_checks_and_reads_polarity_right(tmp_path):
    from dbd_lightning.data.layout import check_datasets

    code, report = prepare("cuhk", SHARED_TR1, tmp_path / "data")
    assert code == 0 and "604 of CUHK-TR-1; TE-1 absent" in report, report
    sets = {name: CUHK(tmp_path / "data" / "CUHK", split=name) for name in ("tr1_train", "tr1_val")}
    issues, _ = check_datasets({"train": {"t": sets["tr1_train"]}, "val": {"v": sets["tr1_val"]}}, level="headers")
    notes = [i for i in issues if i.is_note]
    assert [i for i in issues if not i.is_note] == [], issues  # no inverted-polarity warning on the real masks
    # (white = blurred on disk); the verdict's evidence is a note: every judgeable sampled image agrees
    assert notes and all("polarity=white_blurred agrees with the images" in str(n) and "the opposite in 0;" in str(n)
                         for n in notes), notes
    assert _stems(sets["tr1_val"])[:5] == HOLDOUT_FIRST
    sample = sets["tr1_val"][0]
    frac = float(sample["mask"].mean())
    assert 0.0 < frac < 1.0 and sample["image"].shape[:2] == sample["mask"].shape


@needs_tr1
def test_real_tr1_a_few_training_steps_on_8_pairs(tmp_path):
    names = sorted(p.stem for p in (SHARED_TR1 / "gt").glob("*.png"))[:8]
    for sub in ("image", "gt"):
        (tmp_path / "set" / sub).mkdir(parents=True)
    for stem in names:
        img = next((SHARED_TR1 / "image").glob(f"{stem}.*"))
        os.symlink(img, tmp_path / "set" / "image" / img.name)
        os.symlink(SHARED_TR1 / "gt" / f"{stem}.png", tmp_path / "set" / "gt" / f"{stem}.png")
    cfg = compose_cfg(tmp_path / "run", [
        "model=dffnet_small", "data=folder", f"data.root={tmp_path / 'set'}", "data.polarity=white_blurred",
        "data.image_size=[64,64]", "data.batch_size=4", "data.eval_batch_size=1", "data.num_workers=0",
        "logger=none", "trainer.max_epochs=2", "+trainer.limit_val_batches=2", "+trainer.limit_test_batches=2"])
    metrics = run(cfg)
    assert np.isfinite(metrics["train/loss"]) and 0.0 <= metrics["test/folder/mae"] <= 1.0
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()
    shutil.rmtree(tmp_path / "run" / "checkpoints")


def test_cpu_design_card_recipe_runs_both_stages_from_the_released_start(tmp_path, tr1_only_root):
    """experiment=ddffnet_cuhk_cpu: stage 1 = dffnet_lite_cuhk, stage 2 distils into a student that
    starts where stage 1 started; the defocus teacher is stage 1's checkpoint (init_ckpt dropped)."""
    from dbd_lightning.pipelines.stages import run_pipeline

    cfg = compose_cfg(tmp_path, ["experiment=ddffnet_cuhk_cpu", f"data.root={tr1_only_root}",
                                 "data.image_size=[32,32]", "data.batch_size=2", "data.eval_batch_size=2",
                                 "data.num_workers=0", "logger=none", "model.net.pretrained=false",
                                 "++trainer.fast_dev_run=true"])
    from dbd_lightning.utils.config import instantiate_dict
    from dbd_lightning.zoo import WEIGHTS_DIR

    seen, built = [], {}

    def fake_run(stage_cfg):
        seen.append(stage_cfg)
        if len(seen) == 1:
            return run(stage_cfg)
        built["student"] = build_task(stage_cfg)  # the student, from the released model
        callbacks = instantiate_dict(stage_cfg.callbacks)  # the teachers build without init_ckpt
        built["teacher"] = next(c for c in callbacks if hasattr(c, "teachers")).teachers["defocus"]
        return {}

    run_pipeline(cfg, fake_run)
    stage1, stage2 = seen
    from safetensors.torch import load_file

    released = load_file(WEIGHTS_DIR / "dffnet_lite0_synth.safetensors")
    key = "decoder.final.weight" if "decoder.final.weight" in released else sorted(released)[-1]
    assert torch.equal(built["student"].net.state_dict()[key], released[key].float())
    assert stage1.task_name == "dffnet_lite_cuhk" and stage1.model.net.init_ckpt == "zoo:dffnet_lite0_synth"
    assert stage2.model._target_.endswith("DistillationTask")
    assert stage2.model.net.init_ckpt == "zoo:dffnet_lite0_synth"
    assert stage2.callbacks.distillation.switch_epoch == 5 and stage2.trainer.max_epochs == 25
    assert stage1.data.monitor == stage2.data.monitor == "val/cuhk_tr1_val/mae"


def test_mixed_real_and_synthetic_batches_keep_the_common_keys(tmp_path, tr1_only_root):
    from dbd_lightning.data.samples import collate_samples

    real = {"image": torch.zeros(3, 4, 4), "mask": torch.ones(1, 4, 4), "name": "a"}
    synthetic = {**real, "depth": torch.zeros(1, 4, 4), "name": "b"}
    batch = collate_samples([synthetic, real])
    assert set(batch) == {"image", "mask", "name"} and batch["image"].shape == (2, 3, 4, 4)
    assert batch["name"] == ["b", "a"]
    cfg = compose_cfg(tmp_path, ["data=cuhk_tr1_mixed", f"data.root={tr1_only_root}", "data.synthetic_length=20",
                                 "data.render_size=[32,32]", "data.image_size=[32,32]", "data.batch_size=4",
                                 "data.num_workers=0"])
    train = cfg.data.datamodule.train
    assert list(train) == ["cuhk_tr1_train", "photographic"] and train.photographic.length == 20
    assert train.photographic.photo_split == "train" and train.photographic.preset == "photographic"
    assert list(cfg.data.datamodule.val) == ["cuhk_tr1_val"] and cfg.data.monitor == "val/cuhk_tr1_val/mae"


def test_label_efficiency_subsets_are_seeded_nested_in_train_and_leave_the_holdout(tr1_only_root):
    cuhk = tr1_only_root / "CUHK"
    full = set(_stems(CUHK(cuhk, split="tr1_train")))
    held = set(_stems(CUHK(cuhk, split="tr1_val")))
    tenth = CUHK(cuhk, split="tr1_train", train_fraction=0.1)
    assert len(tenth) == 54 and tenth.issues == [] and set(_stems(tenth)) <= full and not set(_stems(tenth)) & held
    assert _stems(CUHK(cuhk, split="tr1_train", train_fraction=0.1)) == _stems(tenth)  # same seed, same pairs
    assert _stems(CUHK(cuhk, split="tr1_train", train_fraction=0.1, subset_seed=1)) != _stems(tenth)
    assert len(CUHK(cuhk, split="tr1_train", train_fraction=0.3)) == 163
    with pytest.raises(ValueError, match="train_fraction"):
        CUHK(cuhk, split="tr1_val", train_fraction=0.5)
