"""A missing data folder is said by the train precheck before the memory estimate (which depends on the
machine's free RAM) and before any model is built: the same error on every machine."""

from __future__ import annotations

import pytest

import dbd_lightning.utils.memory as memory
from dbd_lightning.data.errors import DataConfigError, DatasetLayoutError
from dbd_lightning.data.folder import ImageMaskFolder, missing_folders_message
from dbd_lightning.train_checks import precheck_train


@pytest.fixture
def memory_estimate_forbidden(monkeypatch):
    def refuse(cfg):
        raise AssertionError("the memory estimate ran before the missing folder was reported")

    monkeypatch.setattr(memory, "check_training_memory", refuse)


def test_missing_folder_root_reported_before_memory(tmp_path, memory_estimate_forbidden):
    with pytest.raises(DatasetLayoutError) as info:
        precheck_train(["data=folder", f"data.root={tmp_path}/nowhere", "logger=none"])
    text = str(info.value)
    assert f"{tmp_path}/nowhere/image" in text and f"{tmp_path}/nowhere/gt" in text
    assert "Nothing was written" in text and not (tmp_path / "nowhere").exists()


def test_folder_without_gt_names_only_gt(tmp_path, memory_estimate_forbidden):
    (tmp_path / "set" / "image").mkdir(parents=True)
    with pytest.raises(DatasetLayoutError) as info:
        precheck_train(["data=folder", f"data.root={tmp_path}/set", "logger=none"])
    assert str(info.value).split(" (expected")[0] == f"dataset folder(s) not found: {tmp_path}/set/gt"


def test_missing_unlabeled_root_reported_before_memory(tmp_path, memory_estimate_forbidden):
    with pytest.raises(DataConfigError) as info:
        precheck_train(["experiment=dffnet_lite_synth_selftrain", f"data.unlabeled_root={tmp_path}/photos",
                        "data.exclude_cuhk_tr1_holdout=0", "logger=none", "real_report.enabled=false"])
    assert f"{tmp_path}/photos" in str(info.value) and "data.unlabeled_root" in str(info.value)


def test_message_is_the_datasets_own(tmp_path):
    (tmp_path / "gt").mkdir()
    expected = missing_folders_message(tmp_path)
    assert expected is not None
    not_found = expected.split(" (expected")[0]
    assert not_found == f"dataset folder(s) not found: {tmp_path / 'image'}"
    with pytest.raises(DatasetLayoutError) as info:
        ImageMaskFolder(tmp_path)
    assert str(info.value) == expected
    (tmp_path / "image").mkdir()
    assert missing_folders_message(tmp_path) is None
