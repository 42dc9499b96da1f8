"""The page's layout (Gradio): photos and model in, the maps side by side, the files to download.

Imported only when Gradio is installed (the ``[app]`` extra); the work is :class:`.core.FocusApp`'s.
Nothing on the page loads from the internet: the theme uses the system's fonts (Gradio's default
fetches web fonts), and :func:`launch` turns off sharing links, analytics and server-side rendering.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from ..utils.config import config_dir
from ..zoo import ZOO_PREFIX, zoo_names
from .core import MODEL_PREFIX, FocusApp

TITLE = "dbd_lightning: where is my photo in focus?"

EXPLANATION = """
**What the pictures mean.** For every photo the page shows three pictures side by side:

1. **In-focus map**: the model's *in-focus probability* for each pixel, from 0 (black = blurred,
   out of focus) to 1 (white = in focus, sharp). It is the same picture
   `python -m dbd_lightning.predict` writes to `focus/`.
2. **Overlay**: the photo blended with the map in colour (yellow = in focus, purple = blurred).
3. **Mask**: the map cut at the threshold below: white where the in-focus probability is at least
   the threshold, black elsewhere.

**Karaali's pipeline** (`model:karaali`) also estimates the **blur radius in pixels**: its picture is
scaled from the smallest radius (black) to the largest (white); the colour bar under the pictures
gives the values, and the download holds the raw values (`.npy`). Its in-focus map is already a mask.

**An all-black map** means the model found nothing in focus: a photo that is blurred everywhere, or
one unlike the model's training data (each zoo model's card, `python -m dbd_lightning.zoo --card NAME`,
says what it was trained on). An all-white map: everything looks sharp to it. A map that is
the other way round (white on the blurred parts) is a model trained with the opposite polarity.

**Models**: `zoo:<name>` are the released models shipped with the package; type a training run
folder (`outputs/train/runs/...`) or a `.ckpt` file to use your own.
"""


def model_choices(default: str) -> list[str]:
    """The released models, the pipelines that predict without a checkpoint, and ``default``."""
    choices = [f"{ZOO_PREFIX}{n}" for n in zoo_names()]
    if (Path(config_dir()) / "model" / "karaali.yaml").is_file():
        choices.append(f"{MODEL_PREFIX}karaali")
    return choices if default in choices else [default, *choices]


def build_page(app: FocusApp, default_model: str) -> gr.Blocks:
    """The page, wired to ``app.predict``."""

    def on_predict(files, spec, threshold):
        result = app.predict(files, spec, threshold)
        return result.gallery, result.files or None, result.message, result.legend

    with gr.Blocks(title=TITLE, analytics_enabled=False) as page:
        gr.Markdown(f"# {TITLE}")
        with gr.Row():
            with gr.Column(scale=2):
                photos = gr.File(label="Photos (one or more)", file_count="multiple", type="filepath",
                                 elem_id="photos")
            with gr.Column(scale=1):
                model = gr.Dropdown(model_choices(default_model), value=default_model, allow_custom_value=True,
                                    label="Model: zoo:<name>, a run folder or a .ckpt file", elem_id="model")
                threshold = gr.Slider(0.0, 1.0, value=app.settings.threshold, step=0.01,
                                      label="Mask threshold (in-focus probability)", elem_id="threshold")
                run = gr.Button("Predict", variant="primary", elem_id="predict")
        status = gr.Markdown(elem_id="status")
        gallery = gr.Gallery(label="In-focus map · overlay · mask", columns=3, object_fit="contain",
                             elem_id="results", height="auto")
        legend = gr.HTML(elem_id="legend")
        downloads = gr.File(label="Download the pictures", file_count="multiple", elem_id="downloads")
        gr.Markdown(EXPLANATION, elem_id="explanation")
        run.click(on_predict, inputs=[photos, model, threshold], outputs=[gallery, downloads, status, legend])
    return page


def launch(page: gr.Blocks, app: FocusApp, host: str, port: int) -> None:
    """Serve the page on ``host:port`` until Ctrl-C: no share link, no analytics, system fonts."""
    theme = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                              font_mono=["ui-monospace", "monospace"])
    page.queue(default_concurrency_limit=1).launch(
        server_name=host, server_port=port, share=False, inbrowser=False, show_error=False, theme=theme,
        ssr_mode=False, mcp_server=False, enable_monitoring=False, run_history=False, allowed_paths=[str(app.out_root)],
        footer_links=[])
