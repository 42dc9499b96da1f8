"""The web app in a real browser: Debian's headless Chromium drives ``python -m dbd_lightning.app``.

Uploads a photo shipped with the package, waits for the result, checks that the page shows the
predictor's in-focus map (fetched from the page and compared with the zoo model's prediction made
here), that the page loads nothing from outside this machine, and that a text file and a 1x1 image
get a message on the page; the screenshot (``app.png``) and the timings (``timings.json``) are
written to the test's tmp folder.

Needs Gradio (``pip install -e '.[app]'``), Playwright's Python package (``pip install playwright``,
no browser download: it drives the system's) and Chromium (``apt-get install chromium-headless-shell``
or ``chromium``); skipped without them.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
from PIL import Image

import dbd_lightning

pytestmark = pytest.mark.slow

PHOTO = Path(dbd_lightning.__file__).resolve().parent / "resources" / "real_mini" / "cuhk_te_sample" / "image" / "1.png"
CHROMIUM = shutil.which("chromium-headless-shell") or shutil.which("chromium")
MISSING = [name for name, ok in (("gradio", importlib.util.find_spec("gradio")),
                                 ("playwright", importlib.util.find_spec("playwright")),
                                 ("chromium", CHROMIUM)) if not ok]
START_TIMEOUT_S = 900  # importing Gradio and torch on a busy 2-core machine takes minutes
PREDICT_TIMEOUT_MS = 900_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    """The app on a free local port (its output in ``server.log``), stopped after the test."""
    port = _free_port()
    env = dict(os.environ, WANDB_MODE="offline", HF_HUB_OFFLINE="1", NO_ALBUMENTATIONS_UPDATE="1",
               GRADIO_TEMP_DIR=str(tmp_path / "gradio"), TMPDIR=str(tmp_path))
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115 (closed below)
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "dbd_lightning.app", "--port", str(port), "--device", "cpu"],
                            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the app exited ({proc.returncode}):\n{(tmp_path / 'server.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() - started > START_TIMEOUT_S:
                pytest.fail(f"the app did not answer on {url} in {START_TIMEOUT_S} s")
            time.sleep(1)
        yield url, time.monotonic() - started
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _png(data: bytes) -> np.ndarray:
    return np.array(Image.open(io.BytesIO(data)))


@pytest.mark.skipif(bool(MISSING), reason=f"needs {', '.join(MISSING)} (pip install -e '.[app]' playwright; "
                                          "apt-get install chromium-headless-shell)")
def test_page_shows_the_predictors_map(server, tmp_path):
    from playwright.sync_api import sync_playwright

    from dbd_lightning.data.image_files import read_rgb
    from dbd_lightning.inference.predictor import build_predictor
    from dbd_lightning.render import focus_mask, to_uint8

    url, start_s = server
    outside: list[str] = []
    timings = {"server_start_s": round(start_s, 1)}
    (tmp_path / "notes.txt").write_text("not a photo\n")
    Image.new("RGB", (1, 1)).save(tmp_path / "dot.png")

    def only_local(route):
        if urlparse(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:  # the page must work offline: record and refuse anything else
            outside.append(route.request.url)
            route.abort()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 1600})
        page.route("**/*", only_local)
        try:
            t = time.monotonic()
            page.goto(url, timeout=300_000)
            page.wait_for_selector("#predict", timeout=300_000)
            timings["page_load_s"] = round(time.monotonic() - t, 1)
            explanation = page.inner_text("#explanation")

            page.set_input_files("#photos input[type=file]", str(PHOTO))
            page.get_by_text(PHOTO.name).first.wait_for(timeout=300_000)
            t = time.monotonic()
            page.click("#predict")
            page.wait_for_function("document.querySelectorAll('#results img').length >= 3",
                                   timeout=PREDICT_TIMEOUT_MS)
            timings["predict_s"] = round(time.monotonic() - t, 1)
            sources = page.eval_on_selector_all("#results img", "els => els.map(e => e.src)")
            status = page.inner_text("#status")
            shown = {name: _png(page.request.get(next(s for s in sources if name in s)).body())
                     for name in ("1_focus.png", "1_overlay.png", "1_mask.png")}
            page.screenshot(path=str(tmp_path / "app.png"), full_page=True)

            page.goto(url, timeout=300_000)  # a fresh page: an empty upload box
            page.wait_for_selector("#predict", timeout=300_000)
            page.set_input_files("#photos input[type=file]", [str(tmp_path / "notes.txt"), str(tmp_path / "dot.png")])
            page.get_by_text("dot.png").first.wait_for(timeout=300_000)
            page.click("#predict")
            page.get_by_text("notes.txt is not an image file").wait_for(timeout=PREDICT_TIMEOUT_MS)
            bad_status = page.inner_text("#status")
            page.screenshot(path=str(tmp_path / "app_bad_input.png"), full_page=True)
        except Exception:
            page.screenshot(path=str(tmp_path / "app_failed.png"), full_page=True)
            raise
        finally:
            browser.close()

    predictor, _ = build_predictor(ckpt="zoo:dffnet_lite0_synth", device="cpu", backend="torch")
    focus = predictor.predict_image(read_rgb(PHOTO))["focus"]
    expected = to_uint8(focus)
    timings["screenshot"] = str(tmp_path / "app.png")
    (tmp_path / "timings.json").write_text(json.dumps(timings, indent=1))
    print(json.dumps(timings))

    assert "white = in focus" in explanation and "blur radius in pixels" in explanation
    assert "1 of 1 photo(s) predicted with zoo:dffnet_lite0_synth" in status
    got = shown["1_focus.png"]
    assert got.shape == expected.shape == (320, 320)
    # the server predicted in another process: equal up to float rounding at the grey-level boundaries
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1
    assert expected.std() > 5  # a real map, not a constant picture
    assert shown["1_overlay.png"].shape == (320, 320, 3)
    assert np.mean(shown["1_mask.png"] != focus_mask(focus, 0.5)) < 1e-3
    assert "dot.png is 1x1 pixels, too small" in bad_status and "Traceback" not in bad_status
    assert "0 of 2 photo(s) predicted" in bad_status
    assert outside == [], f"the page asked for resources outside this machine: {outside[:5]}"
