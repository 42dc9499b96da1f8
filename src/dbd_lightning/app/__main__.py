"""``python -m dbd_lightning.app``: predict in-focus maps of your photos in a local web page.

Opens a page on http://127.0.0.1:7860 (``--host`` / ``--port``): drop photos, pick a model
(``--ckpt`` is the first choice: ``zoo:dffnet_lite0_synth`` unless given), see the in-focus map,
the overlay and the mask side by side, download them. Needs Gradio (``pip install -e '.[app]'``);
without it the command says so and exits 2. Runs offline: no share link, no analytics.
Defaults: ``conf/app.yaml``.
"""

from __future__ import annotations

from .. import _env  # noqa: F401  (first: the environment defaults, before any library import)

# isort: split

import argparse
import importlib.util
import os
import shutil
import sys
from pathlib import Path

from omegaconf import OmegaConf

from ..utils.config import config_dir

EXIT_USER_ERROR = 2
INSTALL_HINT = "pip install -e '.[app]'"
#: Gradio reads these at import: no usage analytics, no version check online
OFFLINE_ENV = {"GRADIO_ANALYTICS_ENABLED": "False", "GRADIO_SHARE": "False"}


def defaults() -> dict:
    """``conf/app.yaml`` as a plain dict."""
    return OmegaConf.to_container(OmegaConf.load(Path(config_dir()) / "app.yaml"), resolve=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    d = defaults()
    ap = argparse.ArgumentParser(prog="python -m dbd_lightning.app", description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", default=d["ckpt"], help="zoo:<name> | run folder | .ckpt | model:<pipeline> "
                    f"(default {d['ckpt']})")
    ap.add_argument("--host", default=d["host"], help=f"address to serve on (default {d['host']}: this machine only)")
    ap.add_argument("--port", type=int, default=d["port"], help=f"port (default {d['port']})")
    ap.add_argument("--device", default=d["device"], help="auto | cpu | cuda[:N]")
    ap.add_argument("--threshold", type=float, default=d["threshold"], help="the mask's first threshold")
    ap.add_argument("--overlay-alpha", type=float, default=d["overlay_alpha"])
    ap.add_argument("--max-megapixels", type=float, default=d["max_megapixels"],
                    help="larger photos are refused with a message")
    ap.add_argument("--min-side", type=int, default=d["min_side"])
    ap.add_argument("--max-files", type=int, default=d["max_files"])
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="model:<pipeline> config override, e.g. --set model.bnet_ckpt=bnet.ckpt (repeatable)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if importlib.util.find_spec("gradio") is None:
        print(f"error: the web app needs Gradio, which is not installed: {INSTALL_HINT}", file=sys.stderr)
        return EXIT_USER_ERROR
    if not 0.0 <= args.threshold <= 1.0:
        print(f"error: --threshold {args.threshold} is not in [0, 1]", file=sys.stderr)
        return EXIT_USER_ERROR
    os.environ.update(OFFLINE_ENV)

    from ..utils.errors import UserError
    from .core import FocusApp, Settings

    settings = Settings(threshold=args.threshold, overlay_alpha=args.overlay_alpha,
                        max_megapixels=args.max_megapixels, min_side=args.min_side, max_files=args.max_files,
                        device=args.device, search_root=os.environ.get("DBD_LOG_DIR", "outputs"),
                        model_overrides=tuple(args.overrides))
    app = FocusApp(settings)
    try:  # a --ckpt that cannot be used stops here, before the page opens
        app.predictor(args.ckpt)
    except (UserError, ValueError, FileNotFoundError) as exc:
        print(f"error: --ckpt {args.ckpt}: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    from .ui import build_page, launch

    print(f"dbd_lightning app: http://{args.host}:{args.port} (model {args.ckpt}; Ctrl-C stops)", flush=True)
    try:
        launch(build_page(app, args.ckpt), app, args.host, args.port)
    finally:  # the pictures of this session: the folder FocusApp created for them, nothing else
        shutil.rmtree(app.out_root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
