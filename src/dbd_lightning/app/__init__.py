"""``python -m dbd_lightning.app``: a local web page (Gradio, the ``[app]`` extra) that predicts in-focus maps.

:mod:`.core` does the work as plain functions (tested without Gradio); :mod:`.ui` lays out the page;
:mod:`.__main__` is the command (Gradio imported only there, lazily).
"""
