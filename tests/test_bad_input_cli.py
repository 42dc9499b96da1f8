"""Bad input on the command line: ``error: <message naming the culprit>``, exit 2, nothing changed.

Each case runs the entry point in process (``train.main`` / ``eval.main`` / ``export.main`` with
``sys.argv`` set) inside a scratch folder, and checks the exit status, that the message on stderr
names the key / file at fault (and the fix), and that no file outside the run's own folder was
created, changed or removed (checksums of the whole scratch folder before and after).
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from dbd_lightning.utils.config import config_dir
from dbd_lightning.utils.errors import UserError, handle_user_errors

from .helpers import TINY

SMALL = ["model=dffnet_small", *TINY, "logger=none"]


def _tree(root: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """path -> sha256 of every file under ``root`` (folders too, as ``<dir>``), except under ``skip``."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if rel.startswith(skip):
            continue
        out[rel] = "<dir>" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    """A scratch working folder with a fabricated train run (``runs/a``: dffnet_small, checkpoints)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DBD_LOG_DIR", str(tmp_path / "outputs"))
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    run = tmp_path / "runs" / "a"
    (run / ".hydra").mkdir(parents=True)
    (run / "checkpoints").mkdir()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir(), version_base="1.3"):
        cfg = compose("train", overrides=SMALL)
        other = compose("train", overrides=["model=pdnet_small", *TINY])
    (run / ".hydra" / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    (run / ".hydra" / "overrides.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(SMALL)))
    meta = {"model": OmegaConf.to_container(cfg.model), "image_size": [64, 64], "run_dir": str(run)}
    torch.save({"state_dict": {}, "dbd_run": meta}, run / "checkpoints" / "last.ckpt")
    foreign = {"model": OmegaConf.to_container(other.model), "image_size": [64, 64], "run_dir": "runs/b"}
    torch.save({"state_dict": {}, "dbd_run": foreign}, run / "checkpoints" / "foreign.ckpt")
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "random.ckpt").write_bytes(os.urandom(4096))
    (tmp_path / "files" / "empty.ckpt").write_bytes(b"")
    (tmp_path / "files" / "a_file").write_text("not a folder\n")
    torch.save({"state_dict": {"w": torch.ones(1)}, "x": Evil()}, tmp_path / "files" / "evil.ckpt")
    return tmp_path


class Evil:
    def __reduce__(self):
        return (print, ("executed!",))


def _run_main(module: str, args: list[str], monkeypatch) -> int:
    import importlib

    mod = importlib.import_module(f"dbd_lightning.{module}")
    monkeypatch.setattr(sys, "argv", [module, *args])
    GlobalHydra.instance().clear()
    # handlers created during earlier tests (Hydra's, Lightning's) may write to a closed captured stream
    for lg in [logging.root, *(x for x in logging.Logger.manager.loggerDict.values() if isinstance(x, logging.Logger))]:
        lg.handlers = [h for h in lg.handlers if not getattr(getattr(h, "stream", None), "closed", False)]
    try:
        mod.main()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def _expect_user_error(scratch: Path, module: str, args: list[str], names: list[str], monkeypatch, capsys,
                       run_folder: str | None = None) -> str:
    before = _tree(scratch)
    code = _run_main(module, args, monkeypatch)
    err = capsys.readouterr().err
    assert code == 2, err[-2000:]
    line = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert line, err[-2000:]
    message = err[err.index("error: "):]
    for name in names:
        assert name in message, (name, message)
    assert "Traceback" not in err, err[:4000]
    assert "\\n" not in message
    skip = (run_folder,) if run_folder else ()
    after = _tree(scratch, skip)
    assert after == {k: v for k, v in before.items() if not (run_folder and k.startswith(run_folder))}, \
        "files outside the run folder changed"
    if run_folder is None:
        assert not (scratch / "outputs").exists(), "a run folder was created"
    return message


# ----------------------------------------------------------------------------- train, config values
TRAIN_CASES = {
    "batch_size_text": (["data.batch_size=abc"], ["data.batch_size", "whole number"]),
    "batch_size_negative": (["data.batch_size=-2"], ["data.batch_size=-2"]),
    "batch_size_zero": (["data.batch_size=0"], ["data.batch_size=0"]),
    "batch_size_float": (["data.batch_size=2.5"], ["data.batch_size=2.5"]),
    "eval_batch_size": (["data.eval_batch_size=x"], ["data.eval_batch_size"]),
    "num_workers": (["data.num_workers=-1"], ["data.num_workers=-1"]),
    "max_epochs": (["trainer.max_epochs=ten"], ["trainer.max_epochs"]),
    "image_size_zero": (["data.image_size=[0,64]"], ["data.image_size", "[height,width]"]),
    "image_size_text": (["data.image_size=big"], ["data.image_size"]),
    "preflight_switch": (["preflight.memory=maybe"], ["preflight.memory", "true"]),
    "unknown_model": (["model=nosuch"], ["model=nosuch", "the model options are", "dffnet_lite"]),
    "unknown_key": (["model.net.encoderr=resnet18"], ["model.net.encoderr", "did you mean model.net.encoder"]),
    "trainer_key_typo": (["trainer.max_epoch=4"], ["trainer.max_epoch", "did you mean trainer.max_epochs"]),
    "trainer_key_typo_added": (["+trainer.max_epoch=4"], ["trainer.max_epoch", "not an argument of",
                                                          "did you mean trainer.max_epochs"]),
    "optimizer_lr_text": (["model.optimizer.lr=abc"], ["model.optimizer.lr='abc'", "number"]),
    "unknown_data_option": (["data=cuhk_tr"], ["data=cuhk_tr", "did you mean data=cuhk_tr", "cuhk_tr1_paper"]),
    "karaali_pipeline": (["model=karaali"], ["model=karaali", "karaali_bnet", "predict"]),
    "patch_model_image_data": (["model=karaali_bnet", "data=synthetic"], ["karaali_bnet", "data=karaali_bnet_patches"]),
    "patch_data_dbd_model": (["data=karaali_bnet_patches"], ["data=patches", "data=synthetic"]),
    "folder_without_root": (["data=folder"], ["data.root (needed by data=folder) is not set", "data.root=<"]),
    "missing_benchmark": (["data=cuhk_tr1", "data.root=nowhere"], ["CUHK", "nowhere", "dbd_lightning.data.prepare cuhk"]),
    "design_card_missing_data": (["model=ddffnet", "data=cuhk_tr1", "data.root=nowhere"],
                                 ["data=cuhk_tr1", "CUHK", "python -m dbd_lightning.data.prepare cuhk"]),
    "two_benchmarks_missing": (["data=cuhk_tr1_dut_tr", "data.root=nowhere"], ["CUHK", "DUT", "prepare dut"]),
    "ckpt_random_bytes": (["ckpt_path=files/random.ckpt"], ["files/random.ckpt", "not a PyTorch checkpoint"]),
    "ckpt_empty": (["ckpt_path=files/empty.ckpt"], ["files/empty.ckpt", "empty"]),
    "ckpt_missing": (["ckpt_path=files/none.ckpt"], ["files/none.ckpt", "does not exist"]),
    "ckpt_code": (["ckpt_path=files/evil.ckpt"], ["files/evil.ckpt", "refused"]),
    "output_under_a_file": (["hydra.run.dir=files/a_file/run"], ["files/a_file", "hydra.run.dir"]),
    "paper_with_its_experiment": (["experiment=ddnet_splits", "model=ddnet"],
                                  ["model=ddnet", "experiment=ddnet_splits", "Drop experiment="]),
    "sweep_bad_job": (["-m", "data.batch_size=2,abc"], ["data.batch_size", "sweep job 1"]),
    "resume_not_a_run": (["run_dir=files"], ["run_dir=files", "not a train run folder"]),
    "resume_with_multirun": (["-m", "run_dir=runs/a"], ["run_dir", "multirun"]),
    "resume_without_ckpt": (["run_dir=runs/a", "ckpt_path=null"], ["ckpt_path=last"]),
    "resume_other_model": (["run_dir=runs/a", "model=pdnet_small"], ["run_dir=runs/a", "model.net._target_",
                                                                     "PDNet", "Nothing was written"]),
    "resume_other_data": (["run_dir=runs/a", "data.image_size=[96,96]"], ["data.image_size"]),
    "resume_other_loss": (["run_dir=runs/a", "loss=bce"], ["loss."]),
    "resume_bad_ckpt": (["run_dir=runs/a", "ckpt_path=files/random.ckpt"], ["ckpt_path=files/random.ckpt"]),
}


@pytest.mark.parametrize("case", sorted(TRAIN_CASES))
def test_train_bad_input(case, scratch, monkeypatch, capsys):
    args, names = TRAIN_CASES[case]
    extra = [] if any(a.startswith(("model=", "run_dir=", "data=")) for a in args) else SMALL
    _expect_user_error(scratch, "train", [*extra, *args], names, monkeypatch, capsys)


def test_resume_with_an_empty_last_checkpoint(scratch, monkeypatch, capsys):
    (scratch / "runs" / "a" / "checkpoints" / "last.ckpt").write_bytes(b"")
    _expect_user_error(scratch, "train", ["run_dir=runs/a"], ["last.ckpt", "empty"], monkeypatch, capsys)


def test_memory_preflight_names_a_batch_size_that_fits(scratch, monkeypatch, capsys):
    """The issue's case: ``train model=btbnet data=synthetic`` at batch 6 (~5 GiB / 320 px sample)."""
    from dbd_lightning.utils import memory

    monkeypatch.setattr(memory, "available_memory", lambda cfg: (24 * memory.GIB, "available RAM"))
    msg = _expect_user_error(scratch, "train", ["model=btbnet", "data=synthetic", "data.batch_size=6"],
                             ["data.batch_size=6", "data.batch_size=4", "preflight.memory=false"], monkeypatch, capsys)
    # 4 x 5.11 GiB (4.65 GiB saved activations, experiments/btbnet_memory.md, + 10 %) + 1.48 GiB fixed = 21.9 GiB
    assert "5.11 GiB of activations per sample" in msg


def test_memory_preflight_estimate_matches_the_btbnet_measurement():
    """The generic meta-device estimate equals BTBNet's own (4759 MiB at 320 px, measured step: 5139 MiB
    RSS growth incl. 205 MiB gradients, experiments/btbnet_memory.md)."""
    from dbd_lightning.utils.memory import estimate_training_memory

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir(), version_base="1.3"):
        cfg = compose("train", overrides=["model=btbnet", "data.batch_size=1"])
    est = estimate_training_memory(cfg)
    assert est["per_sample_bytes"] / 2**20 == pytest.approx(4759.4, abs=1)
    assert est["params_bytes"] / 2**20 == pytest.approx(205.0, abs=0.1)


# ----------------------------------------------------------------------------- eval / export, checkpoints
def test_eval_refuses_another_runs_checkpoint(scratch, monkeypatch, capsys):
    msg = _expect_user_error(scratch, "eval", ["run_dir=runs/a", "ckpt=runs/a/checkpoints/foreign.ckpt"],
                             ["foreign.ckpt", "model.net._target_", "runs/b"], monkeypatch, capsys,
                             run_folder="outputs")
    log = next((scratch / "outputs").rglob("eval.log")).read_text()
    assert msg.strip().splitlines()[0] in log  # the error is in the eval run's own log too


@pytest.mark.parametrize("which,names", [("random.ckpt", ["random.ckpt", "not a PyTorch checkpoint"]),
                                         ("empty.ckpt", ["empty.ckpt", "empty (0 bytes)"])])
def test_eval_unreadable_checkpoint(which, names, scratch, monkeypatch, capsys):
    target = scratch / "runs" / "a" / "checkpoints" / which
    target.write_bytes((scratch / "files" / which).read_bytes())
    msg = _expect_user_error(scratch, "eval", ["run_dir=runs/a", f"ckpt=runs/a/checkpoints/{which}"], names,
                             monkeypatch, capsys, run_folder="outputs")
    assert "weights_only=False" not in msg


def test_export_refuses_another_runs_checkpoint(scratch, monkeypatch, capsys):
    _expect_user_error(scratch, "export", ["ckpt=runs/a/checkpoints/foreign.ckpt", "formats=[torchscript]"],
                       ["foreign.ckpt", "model.net._target_"], monkeypatch, capsys, run_folder="outputs")


OTHER_CASES = {
    "eval_unknown_data": ("eval", ["run_dir=runs/a", "data=nosuch"], ["data/nosuch"]),
    "eval_unknown_key": ("eval", ["run_dir=runs/a", "report.gridd=1"], ["report.gridd"]),
    "eval_output_under_a_file": ("eval", ["run_dir=runs/a", "hydra.run.dir=files/a_file/ev"],
                                 ["files/a_file", "hydra.run.dir"]),
    "export_unknown_key": ("export", ["ckpt=runs/a", "opsett=17"], ["opsett"]),
    "predict_without_output": ("predict", ["ckpt=runs/a", "input=files"], ["output is not set", "output=<"]),
    "eval_folder_without_root": ("eval", ["run_dir=runs/a", "data=folder"], ["data.root (needed by data=folder)"]),
    "predict_unknown_key": ("predict", ["ckpt=runs/a", "input=files", "output=out", "tile.sizee=3"], ["tile.sizee"]),
}


@pytest.mark.parametrize("case", sorted(OTHER_CASES))
def test_other_entry_points_bad_input(case, scratch, monkeypatch, capsys):
    module, args, names = OTHER_CASES[case]
    _expect_user_error(scratch, module, args, names, monkeypatch, capsys)


# ----------------------------------------------------------------------------- other entry points
def test_data_check_unknown_option(scratch, monkeypatch, capsys):
    from dbd_lightning.data import check

    before = _tree(scratch)
    try:  # main returns the exit status (python -m ... raises SystemExit with it)
        code = check.main(["data=nosuch"])
    except SystemExit as exc:
        code = exc.code
    assert code == 2 and "data/nosuch" in capsys.readouterr().err
    assert _tree(scratch) == before


def test_data_prepare_missing_source(scratch, capsys):
    from dbd_lightning.data import prepare

    before = _tree(scratch)
    code = prepare.main(["cuhk", "nowhere/blur_dataset", "--root", "data"])
    err = capsys.readouterr().err
    assert code == 2 and "nowhere/blur_dataset" in err and err.startswith("error: ")
    assert _tree(scratch) == before


# ----------------------------------------------------------------------------- the handler itself
def test_handler_message_log_and_full_error(tmp_path, monkeypatch, capsys):
    log = tmp_path / "run" / "train.log"
    log.parent.mkdir()
    with pytest.raises(SystemExit) as exc, handle_user_errors(log_file=log):
        raise UserError("data.batch_size=abc is not valid\nuse a whole number")
    assert exc.value.code == 2
    assert capsys.readouterr().err == "error: data.batch_size=abc is not valid\nuse a whole number\n"
    assert "[ERROR] - error: data.batch_size=abc" in log.read_text()
    # no run folder: nothing is created
    with pytest.raises(SystemExit), handle_user_errors(log_file=tmp_path / "none" / "train.log"):
        raise UserError("x")
    assert not (tmp_path / "none").exists()
    # HYDRA_FULL_ERROR=1: the exception itself (traceback)
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with pytest.raises(UserError, match="x"), handle_user_errors(log_file=False):
        raise UserError("x")
    # other exceptions are bugs: unchanged
    monkeypatch.delenv("HYDRA_FULL_ERROR")
    with pytest.raises(KeyError), handle_user_errors(log_file=False):
        raise KeyError("label")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without a CUDA GPU")
def test_gpu_requests_without_a_gpu_are_one_line(scratch, monkeypatch, capsys):
    from dbd_lightning.inference.predictor import resolve_device
    from dbd_lightning.utils.errors import ConfigError

    _expect_user_error(scratch, "train", ["trainer=gpu", *TINY],
                       ["trainer.accelerator=gpu", "no usable CUDA GPU", "trainer=cpu"], monkeypatch, capsys)
    with pytest.raises(ConfigError, match="device=cuda but this machine has no usable CUDA GPU"):
        resolve_device("cuda")
    with pytest.raises(ConfigError, match="is not a device"):
        resolve_device("gpu0")
    assert str(resolve_device("auto")) == "cpu" and str(resolve_device("cpu")) == "cpu"
