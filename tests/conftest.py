"""Test-wide settings: offline, deterministic, small thread count."""

import os

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("WANDB_SILENT", "true")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture(autouse=True)
def _drop_log_files_of_finished_tests():
    """A CLI run in-process (Hydra's job logging) leaves a FileHandler on the root logger that points
    into the test's tmp_path; once pytest deletes that folder, any later log call in the same worker
    fails. Remove the file handlers a test added when it ends."""
    import logging

    root = logging.getLogger()
    before = set(root.handlers)
    yield
    for handler in list(root.handlers):
        if handler not in before and isinstance(handler, logging.FileHandler):
            root.removeHandler(handler)
            handler.close()
