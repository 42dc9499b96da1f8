"""The papers of this suite, read from their folders: one registry for the CLIs, convert, bench and tests.

Every ``models/<paper>/__init__.py`` that defines ``PAPER`` (a :class:`~.paper.Paper`) is a paper; this
module finds those folders (``pkgutil`` over :mod:`dbd_lightning.models`' path), imports only the
``__init__`` modules (plain data: no torch, no Lightning) and answers questions across them: the
``model=<paper>`` presets, the converters, the bench cases, the metric conventions, which model
options are pipelines, what a datamodule serves, which module reads edge maps. A new paper is its
folder and its configs; nothing here names one.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from typing import Any

from .paper import Paper


class RegistryError(ValueError):
    """Two paper folders declare the same name, or a folder's ``PAPER`` is not a :class:`Paper`."""


@functools.cache
def papers() -> dict[str, Paper]:
    """Folder name -> its :class:`Paper`, for every ``models/<folder>/`` that declares ``PAPER``."""
    from .. import models

    found: dict[str, Paper] = {}
    for info in sorted(pkgutil.iter_modules(models.__path__), key=lambda i: i.name):
        if not info.ispkg:
            continue
        module = importlib.import_module(f"{models.__name__}.{info.name}")
        paper = getattr(module, "PAPER", None)
        if paper is None:
            continue
        if not isinstance(paper, Paper):
            raise RegistryError(f"models/{info.name}/__init__.py: PAPER must be a dbd_lightning.models.paper.Paper, "
                                f"got {type(paper).__name__}")
        found[info.name] = paper
    return found


def clear() -> None:
    """Forget the folders read (a test that adds a paper folder reads them again)."""
    papers.cache_clear()


def _merged(field: str) -> dict[str, Any]:
    """``{key: value}`` of one dict field over every paper; a key declared twice is an error naming both."""
    out: dict[str, Any] = {}
    owner: dict[str, str] = {}
    for name, paper in papers().items():
        for key, value in getattr(paper, field).items():
            if key in out:
                raise RegistryError(f"{field} {key!r} is declared by models/{owner[key]} and models/{name}; "
                                    "rename one of them")
            out[key], owner[key] = value, name
    return out


def presets() -> dict[str, str]:
    """``model=<option>`` -> the experiment it equals, for every paper name that is a whole recipe."""
    return _merged("presets")


def converters() -> dict[str, str]:
    """``python -m dbd_lightning.convert <family>`` -> the module holding its ``main(argv, kind)``."""
    return _merged("converters")


def bench_cases() -> dict[str, tuple[str, dict, dict]]:
    """The papers' ``make bench`` cases (name -> ("module:function", kwargs, quick kwargs))."""
    return _merged("bench")


def metric_conventions() -> dict[str, dict[str, Any]]:
    """The papers' named metric conventions (``metrics.preset``)."""
    return _merged("metric_conventions")


def pipelines() -> dict[str, str]:
    """Model options that are inference pipelines -> what to run or train instead."""
    return _merged("pipelines")


def paper_of(target: str | None) -> Paper | None:
    """The paper whose folder holds ``target`` (a ``_target_`` or module path), None for shared code."""
    prefix = f"{__package__}."
    if not target or not str(target).startswith(prefix):
        return None
    return papers().get(str(target)[len(prefix):].split(".", 1)[0])


def data_serves(target: str | None) -> str:
    """What the datamodule ``target`` serves: ``images`` (maps per image) unless a paper declares otherwise."""
    return _merged("data_serves").get(str(target or ""), "images")


def edge_map_module():
    """The module that reads ``predict ... edges=DIR`` (a paper's ``edge_maps``), imported now; None if none."""
    modules = [p.edge_maps for p in papers().values() if p.edge_maps]
    if len(modules) > 1:
        raise RegistryError(f"more than one paper declares edge_maps ({modules}); predict edges= needs one")
    return importlib.import_module(modules[0]) if modules else None


def small_models() -> list[str]:
    """Every paper's CPU-sized model options (``model=<option>``)."""
    return [m for p in papers().values() for m in p.small_models]


def networks() -> dict[str, tuple[dict[str, Any], str]]:
    """``"module:Class"`` -> (kwargs of a small instance, input-size behaviour) over every paper."""
    return _merged("networks")


def precomputed_edge_maps(edges_dir, predictor, name: str | None, images) -> dict | None:
    """``predict ... edges=DIR``: the edge map of every input, read by the paper that declares ``edge_maps``
    (its ``precomputed_edge_maps``); None without ``edges``. The paper's reader refuses a predictor
    that takes no edge maps."""
    if edges_dir is None or str(edges_dir) == "":
        return None
    module = edge_map_module()
    if module is None:
        raise RegistryError(f"edges={edges_dir}: no paper in this installation reads edge maps")
    return module.precomputed_edge_maps(edges_dir, predictor, name, images)
