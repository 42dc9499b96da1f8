"""Test-wide settings: offline, deterministic, small thread count."""

import dbd_lightning._env  # noqa: F401  (first: the offline defaults of the entry points, before any library import)

# isort: split

import os

import pytest
import torch

os.environ.setdefault("WANDB_SILENT", "true")  # read when a W&B run starts, not at import
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
        elif handler not in before and isinstance(handler, logging.StreamHandler):
            # Hydra's console handler bound to the test's captured stderr: closed once the test ends, so a
            # later test's log call would print a "Logging error" traceback into its own output
            root.removeHandler(handler)
