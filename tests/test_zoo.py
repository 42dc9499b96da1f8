"""Released models: release() -> zoo:<name> rebuilds the network and its protocol from the file alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from dbd_lightning.inference.predictor import CheckpointPredictor
from dbd_lightning.inference.settings import InferenceSettings
from dbd_lightning.models.dffnet import DFFNet
from dbd_lightning.runs import released as released_models
from dbd_lightning.runs.resolver import resolve_checkpoint
from dbd_lightning.runs.run import CheckpointSpecError, RunCheckpoint
from dbd_lightning.zoo import writer
from dbd_lightning.zoo.__main__ import main as zoo_main

NET = {"_target_": "dbd_lightning.models.dffnet.DFFNet", "encoder": "efficientnet_lite0", "pretrained": True,
       "weights_file": None, "channels": 8}


@pytest.fixture()
def released(tmp_path, monkeypatch):
    torch.manual_seed(0)
    net = DFFNet("efficientnet_lite0", channels=8).eval()
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / "checkpoints").mkdir()
    OmegaConf.save(OmegaConf.create({"model": {"net": NET}, "data": {"image_size": [96, 96], "datamodule": {
        "eval_transform": {"size": [96, 96]}}}, "metrics": {"beta2": 0.3}}), run / ".hydra" / "config.yaml")
    torch.save({"state_dict": {f"net.{k}": v for k, v in net.state_dict().items()}}, run / "checkpoints" / "epoch_001.ckpt")
    zoo = tmp_path / "zoo"
    writer.release(RunCheckpoint(run, run / "checkpoints" / "epoch_001.ckpt"), "tiny", "# tiny\n\nTraining data: random weights\n", folder=zoo,
                     extra={"command": "python -m dbd_lightning.train ..."})
    monkeypatch.setattr(released_models, "WEIGHTS_DIR", zoo)
    return net, zoo


def test_release_roundtrip_equals_the_fp16_rounded_network(released):
    net, zoo = released
    entry = resolve_checkpoint("zoo:tiny")
    assert entry.label == "zoo:tiny" and entry.load_config().data.image_size == [96, 96]
    assert entry.load_config().model.net.pretrained is False  # released weights replace any init
    pred = CheckpointPredictor.from_run(entry, {"tile": {"mode": False}}, device="cpu")
    ref = DFFNet("efficientnet_lite0", channels=8).eval()
    ref.load_state_dict({k: (v.half().float() if v.is_floating_point() else v) for k, v in net.state_dict().items()})
    rgb = np.random.default_rng(0).integers(0, 256, (70, 90, 3), dtype=np.uint8)
    got = pred.predict_image(rgb)["focus"]
    ref_pred = CheckpointPredictor(ref, InferenceSettings.papers_protocol((96, 96)), device="cpu").predict_image(
        rgb)["focus"]
    assert got.shape == (70, 90)
    np.testing.assert_allclose(got, ref_pred, atol=1e-5)


def test_unknown_name_lists_the_released_ones(released):
    with pytest.raises(CheckpointSpecError, match="released models: tiny"):
        resolve_checkpoint("zoo:nope")


def test_corrupt_release_is_refused(released):
    _, zoo = released
    (zoo / "tiny.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointSpecError, match="unreadable"):
        resolve_checkpoint("zoo:tiny").load_config()


def test_zoo_cli_lists_recommended_first(released, capsys, monkeypatch):
    _, zoo = released
    (zoo / "alpha.safetensors").write_bytes((zoo / "tiny.safetensors").read_bytes())
    (zoo / "alpha.md").write_text("# alpha\n")
    monkeypatch.setattr(released_models, "RECOMMENDED", ("tiny",))
    assert zoo_main([]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "tiny   trained on: random weights",
        "alpha  trained on: not stated (the card has no 'Training data:' line)"]
    assert zoo_main(["--card", "missing"]) == 2


def test_release_refuses_a_card_without_its_training_data(released, tmp_path):
    _, zoo = released
    run = tmp_path / "run"
    with pytest.raises(ValueError, match="Training data:"):
        writer.release(RunCheckpoint(run, run / "checkpoints" / "epoch_001.ckpt"), "other", "# other\n", folder=zoo)
    assert not (zoo / "other.safetensors").exists()


def test_shipped_models_are_listed_with_their_data_and_beat_the_all_blurred_floor(capsys):
    """The released weights in the package: the supervised CUHK model first, each line naming its training
    data, and each useful on the shipped real photographs."""
    from dbd_lightning.reports.real_samples import score_on_real_samples

    assert zoo_main([]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split()[0] for ln in lines[:2]] == ["dffnet_lite0_cuhk", "dffnet_lite0_synth"]
    assert "CUHK TR-1" in lines[0] and "synthetic photographic scenes only" in lines[1]
    floor = score_on_real_samples(0.0, {"preset": "ddffnet"})
    for name in ("dffnet_lite0_cuhk", "dffnet_lite0_synth"):
        pred = CheckpointPredictor.from_run(resolve_checkpoint(f"zoo:{name}"), InferenceSettings.papers_protocol(),
                                            device="cpu", backend="torch")
        assert pred.image_size == (320, 320)
        model = score_on_real_samples(lambda rgb, p=pred: p.predict_image(rgb)["focus"], {"preset": "ddffnet"})
        for subset in ("real_cuhk", "real_dut"):
            assert model[subset]["mae"] < floor[subset]["mae"]
            assert model[subset]["fbeta"] > floor[subset]["fbeta"] and model[subset]["iou"] > floor[subset]["iou"]


def test_release_never_overwrites_files_it_did_not_write(released, tmp_path):
    """A name whose files are not an earlier release is refused before anything is written; an earlier
    release of the same name is replaced (atomically: no temporary file is left)."""
    from dbd_lightning.utils.errors import UserError

    _, zoo = released
    run = RunCheckpoint(tmp_path / "run", tmp_path / "run" / "checkpoints" / "epoch_001.ckpt")
    (zoo / "mine.md").write_text("my notes\n")
    with pytest.raises(UserError, match=r"mine\.md exist\(s\) and are not an earlier release"):
        writer.release(run, "mine", "# mine\n\nTraining data: x\n", folder=zoo)
    assert (zoo / "mine.md").read_text() == "my notes\n" and not (zoo / "mine.safetensors").exists()
    (zoo / "blob.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(UserError, match=r"blob\.safetensors"):
        writer.release(run, "blob", "# blob\n\nTraining data: x\n", folder=zoo)
    assert (zoo / "blob.safetensors").read_bytes() == b"\x00" * 64
    writer.release(run, "tiny", "# tiny v2\n\nTraining data: random weights\n", folder=zoo)
    assert (zoo / "tiny.md").read_text().startswith("# tiny v2")
    assert [p.name for p in zoo.iterdir() if p.name.startswith(".")] == []
