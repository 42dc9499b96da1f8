"""Typed checks of a command's documented config keys: type, range, choices, existing paths.

Each command declares its keys once, as ``{key: Check}`` (``export.KEY_CHECKS``, ``eval.KEY_CHECKS``,
``predict.KEY_CHECKS``, train's :data:`~.validate.TRAIN_KEY_CHECKS`), and :func:`check_keys` raises one
:class:`~.errors.ConfigError` for the first bad value, naming the key, what it must be and a valid
example::

    error: atol='abc' is not valid: it must be a number > 0 (e.g. atol=0.0001)

The key=value commands run it on the config composed from the command line in
:func:`~.validate.precompose` / :func:`~.validate.precheck_train`, i.e. before Hydra creates the output
folder, before any model is loaded and before any file is written; eval / predict / export run it again
at the start of the job (a programmatic call, the later jobs of a large sweep).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from .errors import ConfigError

__all__ = ["Check", "check_keys", "check_value", "choice", "choices", "existing", "flag", "image_size", "number", "numbers",
           "whole"]

_ABSENT = object()


@dataclass(frozen=True)
class Check:
    """What one key's value must be: ``accepts(value)``, the phrase for the message and a valid example."""

    accepts: Callable[[Any], bool]
    wanted: str
    example: str
    nullable: bool = False
    #: ``"folder"`` / ``"file"``: the value names something to read, which must exist as that
    path: str | None = None
    #: words that are valid values although they name no path (``test_ckpt=best``)
    words: tuple[str, ...] = ()


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _range(low: float | None, high: float | None, above: float | None, below: float | None) -> str:
    parts = []
    if low is not None:
        parts.append(f">= {low:g}")
    if above is not None:
        parts.append(f"> {above:g}")
    if high is not None:
        parts.append(f"<= {high:g}")
    if below is not None:
        parts.append(f"< {below:g}")
    return " and ".join(parts)


def _in_range(v: float, low: float | None, high: float | None, above: float | None, below: float | None) -> bool:
    return ((low is None or v >= low) and (high is None or v <= high) and (above is None or v > above)
            and (below is None or v < below))


def flag(nullable: bool = False) -> Check:
    """``true`` or ``false``."""
    return Check(lambda v: isinstance(v, bool), "true or false", "true", nullable)


def whole(low: int | None = None, high: int | None = None, example: int | None = None,
          nullable: bool = False) -> Check:
    """A whole number in ``[low, high]``."""
    span = _range(low, high, None, None)
    return Check(lambda v: _is_whole(v) and _in_range(v, low, high, None, None),
                 "a whole number" + (f" {span}" if span else ""),
                 str(example if example is not None else max(low or 0, 1)), nullable)


def number(low: float | None = None, high: float | None = None, *, above: float | None = None,
           below: float | None = None, example: float, nullable: bool = False) -> Check:
    """A finite number in the range (``low`` / ``high`` inclusive, ``above`` / ``below`` exclusive)."""
    span = _range(low, high, above, below)
    return Check(lambda v: _is_number(v) and _in_range(v, low, high, above, below),
                 "a number" + (f" {span}" if span else ""), f"{example:g}", nullable)


def numbers(low: float | None = None, high: float | None = None, *, above: float | None = None,
            below: float | None = None, example: str) -> Check:
    """A list of finite numbers, each in the range (``[]`` allowed)."""
    span = _range(low, high, above, below)

    def accepts(v: Any) -> bool:
        return isinstance(v, list) and all(_is_number(x) and _in_range(x, low, high, above, below) for x in v)

    return Check(accepts, "a list of numbers" + (f" {span}" if span else ""), example)


def choice(options: Iterable[str], nullable: bool = False) -> Check:
    """One of ``options`` (words)."""
    options = tuple(str(o) for o in options)
    return Check(lambda v: isinstance(v, str) and v in options, f"one of {', '.join(options)}", options[0], nullable)


def choices(options: Iterable[str], example: str | None = None) -> Check:
    """A non-empty list of ``options`` (one word alone counts as a list of it)."""
    options = tuple(str(o) for o in options)

    def accepts(v: Any) -> bool:
        items = [v] if isinstance(v, str) else v
        return isinstance(items, list) and len(items) > 0 and all(isinstance(x, str) and x in options for x in items)

    return Check(accepts, f"a non-empty list of {' / '.join(options)}", example or f"[{','.join(options)}]")


def image_size(nullable: bool = True) -> Check:
    """An image size: one positive whole number (square) or ``[height,width]``."""

    def accepts(v: Any) -> bool:
        values = v if isinstance(v, list) else [v]
        return 1 <= len(values) <= 2 and all(_is_whole(x) and x > 0 for x in values)

    return Check(accepts, "one positive whole number or [height,width]", "[320,320]", nullable)


def existing(kind: str = "folder", example: str = "<folder>", nullable: bool = True,
             words: Iterable[str] = ()) -> Check:
    """The path of an existing ``kind`` (``"folder"`` or ``"file"``), or one of ``words``."""
    words = tuple(words)
    wanted = (f"{', '.join(words)} or " if words else "") + f"the path of an existing {kind}"
    return Check(lambda v: isinstance(v, str) and v != "", wanted, example, nullable, path=kind, words=words)


def _value(cfg: Any, key: str) -> Any:
    if isinstance(cfg, DictConfig):
        return OmegaConf.select(cfg, key, default=_ABSENT, throw_on_resolution_failure=False, throw_on_missing=False)
    value = cfg  # a plain mapping (a programmatic call)
    for part in key.split("."):
        value = value.get(part, _ABSENT) if isinstance(value, Mapping) else _ABSENT
    return value


def _shown(value: Any) -> str:
    return repr(value) if not isinstance(value, list) else "[" + ",".join(str(v) for v in value) + "]"


def check_value(key: str, value: Any, check: Check, fix: str = "") -> None:
    """Raise :class:`~.errors.ConfigError` naming ``key`` when ``check`` refuses ``value`` (see :func:`check_keys`)."""
    if isinstance(value, DictConfig | ListConfig):
        value = OmegaConf.to_container(value, resolve=True)
    if check.nullable and (value is None or (check.path and value == "")):
        return
    tail = f" {fix}" if fix else ""
    if not check.accepts(value):
        null = ", or null" if check.nullable else ""
        raise ConfigError(f"{key}={_shown(value)} is not valid: it must be {check.wanted}{null} "
                          f"(e.g. {key}={check.example}).{tail}")
    if check.path and value not in check.words:
        path = Path(str(value)).expanduser()
        found = path.is_dir() if check.path == "folder" else path.is_file()
        if not found:
            state = "does not exist" if not path.exists() else f"is not a {check.path}"
            raise ConfigError(f"{key}={value}: {path} {state}; give {check.wanted} "
                              f"(e.g. {key}={check.example}){', or leave it unset' if check.nullable else ''}.{tail}")


def check_keys(cfg: Any, checks: Mapping[str, Check], fix: str = "") -> None:
    """Raise :class:`~.errors.ConfigError` for the first key of ``checks`` whose value in ``cfg`` it
    refuses; a key the config does not hold is skipped. ``fix`` ends the message (e.g. "Nothing was written.")."""
    for key, check in checks.items():
        value = _value(cfg, key)
        if value is not _ABSENT:
            check_value(key, value, check, fix)
