"""What a paper folder declares about itself (:class:`Paper`), as plain data.

Each ``models/<paper>/__init__.py`` holds one ``PAPER = Paper(...)``; :mod:`.registry` collects them
and the command-line tools, the converter, ``bench`` and the tests read it. A declaration names code
by import path *strings* (``"package.module"`` or ``"package.module:function"``), so reading every
declaration imports neither torch nor Lightning (the predict path starts fast).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: what a paper's output map means (``Paper.predicts``)
PREDICTS = ("focus_probability", "blur_radius")
#: how a network treats the input size (``Paper.input_size``): a multiple of its encoder's stride (named
#: in the error with the nearest valid sizes), or any size (it resizes between levels)
INPUT_SIZES = ("stride_multiple", "any")


@dataclass(frozen=True)
class Paper:
    """One paper folder's declarations (every field but ``name`` may stay empty).

    Attributes:
        name: the folder's name (``models/<name>/``).
        title: the paper, in a few words (``python -m dbd_lightning.convert -h`` and error messages).
        presets: ``model=<option>`` options that are the paper's whole recipe -> the experiment that
            option equals (``conf/model/<option>.yaml`` selects it; e.g. ``{"ddffnet": "ddffnet_paper"}``).
        converters: ``python -m dbd_lightning.convert <family>`` -> module with ``main(argv, kind)``.
        bench: ``make bench`` case -> (``"module:function"``, kwargs, kwargs for ``--quick``).
        metric_conventions: ``metrics.preset`` name -> the convention's keys
            (:func:`dbd_lightning.metrics.collection.resolve_convention`).
        predicts: what the output map is: ``focus_probability`` (in-focus probability in [0, 1]) or
            ``blur_radius`` (a blur amount in pixels).
        pipelines: model options that are inference pipelines (not trained as one network) -> what to do
            instead (``train model=<option>`` stops with "model=<option> is a pipeline, ...: <this>").
        train_advice: how the paper's networks are trained, printed when a model and its data do not match.
        data_serves: datamodule ``_target_`` -> what it serves when it is not ``images`` (a task's
            ``trains_on``, e.g. ``edge_patches``).
        edge_maps: module that reads precomputed edge maps (``predict ... edges=DIR``) when the paper's
            pipeline takes them, else None.
        small_models: CPU-sized model options of the paper's networks (tests export them).
        networks: ``"module:Class"`` -> (constructor kwargs of a small instance, :data:`INPUT_SIZES` entry).
    """

    name: str
    title: str = ""
    presets: dict[str, str] = field(default_factory=dict)
    converters: dict[str, str] = field(default_factory=dict)
    bench: dict[str, tuple[str, dict, dict]] = field(default_factory=dict)
    metric_conventions: dict[str, dict[str, Any]] = field(default_factory=dict)
    predicts: str = "focus_probability"
    pipelines: dict[str, str] = field(default_factory=dict)
    train_advice: str = ""
    data_serves: dict[str, str] = field(default_factory=dict)
    edge_maps: str | None = None
    small_models: tuple[str, ...] = ()
    networks: dict[str, tuple[dict[str, Any], str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.predicts not in PREDICTS:
            raise ValueError(f"models/{self.name}: predicts={self.predicts!r}, must be one of {PREDICTS}")
        for target, (_, size) in self.networks.items():
            if size not in INPUT_SIZES:
                raise ValueError(f"models/{self.name}: networks[{target!r}] input size {size!r}, "
                                 f"must be one of {INPUT_SIZES}")


def lazy_exports(package: str, names: dict[str, str]):
    """A module ``__getattr__`` (PEP 562) that imports ``names`` (attribute -> relative module) on first use,
    so ``dbd_lightning.models.<paper>.<Class>`` (the configs' ``_target_``) works while importing the
    folder's ``__init__`` (to read ``PAPER``) stays free of torch."""
    import importlib

    def __getattr__(name: str):
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(names[name], package), name)

    return __getattr__
