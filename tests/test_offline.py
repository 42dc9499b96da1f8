"""Offline guarantee: the demo pipeline (synthetic data, timm model, W&B offline + CSV logs, checkpoints,
test table) completes with networking disabled."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys

import pytest

from dbd_lightning.train import run

from .helpers import TINY, compose_cfg

DEMO = ["experiment=demo", *TINY, "trainer.max_epochs=1", "~callbacks.progress_bar", "trainer.enable_progress_bar=false"]


class NetworkDisabled(OSError):
    pass


def _refuse(*args, **kwargs):
    raise NetworkDisabled("network access attempted while the test disabled networking")


def test_demo_completes_when_every_socket_connect_fails(tmp_path, monkeypatch):
    attempts = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def connect(self, address):
        if self.family == socket.AF_UNIX:  # local IPC (W&B's service process) is not networking
            return real_connect(self, address)
        attempts.append(address)
        _refuse()

    def connect_ex(self, address):
        if self.family == socket.AF_UNIX:
            return real_connect_ex(self, address)
        attempts.append(address)
        _refuse()

    def getaddrinfo(host, *args, **kwargs):
        attempts.append(host)
        _refuse()

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket, "create_connection", _refuse)
    cfg = compose_cfg(tmp_path, DEMO)
    assert "wandb" in cfg.logger and cfg.logger.wandb.offline  # the demo's own logger, offline
    metrics = run(cfg)
    assert {"test/photographic/mae", "test/photographic/fbeta", "test/photographic/iou", "test/real_dut/mae"} <= set(metrics)
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file() and (tmp_path / "results.md").is_file()
    assert (tmp_path / "real_samples.md").is_file() and (tmp_path / "real_samples_grid.png").is_file()
    assert list((tmp_path / "wandb").glob("offline-run-*"))
    assert attempts == [], f"network access attempted: {attempts}"


def _netns_available() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(not _netns_available(), reason="unshare -rn (user + network namespace) not permitted here")
def test_demo_cli_completes_in_a_namespace_without_network(tmp_path):
    """Every process (Python, W&B's service, data workers) runs in a network namespace with no interface up."""
    probe = subprocess.run(["unshare", "-rn", "python3", "-c",
                            "import socket; socket.create_connection(('1.1.1.1', 443), timeout=2)"],
                           capture_output=True, text=True)
    assert probe.returncode != 0  # the namespace really has no network
    env = dict(os.environ, WANDB_MODE="offline", HF_HUB_OFFLINE="1", NO_ALBUMENTATIONS_UPDATE="1",
               WANDB_SILENT="true", OMP_NUM_THREADS="1")
    proc = subprocess.run(["unshare", "-rn", sys.executable, "-m", "dbd_lightning.train", *DEMO, "hydra.run.dir=demo"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((tmp_path / "demo" / "metrics.json").read_text())
    assert "test/photographic/fbeta" in metrics and "test/real_cuhk/iou" in metrics and list((tmp_path / "demo" / "wandb").glob("offline-run-*"))
