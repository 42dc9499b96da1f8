""""Did you mean" for the two config mistakes Hydra answers unhelpfully.

* An override of a key that does not exist (``trainer.max_epoch=4``): Hydra says "Key 'max_epoch' is
  not in struct" and suggests ``+trainer.max_epoch=4``, which adds the typo to the config and fails
  later inside the class that receives it. We name the closest existing keys of that node instead.
* An unknown option of a config group (``data=cuhk_tr``): Hydra lists its search path. We list the
  group's options, closest first.
* A mandatory value left unset (``data=folder`` without ``data.root``, ``predict`` without ``output``):
  OmegaConf fails later with a traceback naming whichever key first interpolates it
  (``data.val_root``, ``data.datamodule.train.folder.root``). :func:`missing_value_hint` names the key
  the user must set, with an example value.

The closest keys come from :func:`difflib.get_close_matches` (the standard library's ratio of matching
characters), computed on the config composed without the offending override.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence

from omegaconf import DictConfig, ListConfig, OmegaConf

__all__ = ["missing_keys", "missing_value_hint", "unknown_group_option_hint", "unknown_key_hint"]

#: what to give for a mandatory key (``???`` in a config), shown in the message; others get ``<value>``
MISSING_EXAMPLES = {
    "data.root": "<folder holding image/ and gt/>",
    "input": "<image file or folder of images>",
    "output": "<new or empty folder for the maps>",
    "ckpt": "zoo:<name> | <run folder> | <checkpoint file>",
}

_NOT_IN_STRUCT = re.compile(r"Could not override '([^']+)'")
_GROUP_OPTION = re.compile(r"Could not find '([^']+)/([^']+)'")


def _closest(word: str, options: Sequence[str], n: int = 3) -> list[str]:
    return difflib.get_close_matches(word, list(options), n=n, cutoff=0.6)


def unknown_key_hint(message: str, overrides: Sequence[str], compose: Callable[[list[str]], DictConfig]) -> str | None:
    """A one-paragraph message for Hydra's "Could not override 'a.b.c'" (``None`` if it is not that error)."""
    match = _NOT_IN_STRUCT.search(message)
    if not match:
        return None
    full_key = match.group(1).lstrip("+~")
    parent, _, leaf = full_key.rpartition(".")
    rest = [o for o in overrides if o.lstrip("+~").split("=", 1)[0] != full_key]
    try:
        cfg = compose(rest)
        node = cfg
        for part in parent.split(".") if parent else []:
            node = node[part]
        keys = [str(k) for k in node.keys()] if isinstance(node, DictConfig) else []
    except Exception:  # the rest does not compose either: Hydra's own message then
        return None
    close = _closest(leaf, keys)
    where = f"'{parent}'" if parent else "the top level of the config"
    if close:
        names = " or ".join(f"{parent + '.' if parent else ''}{k}" for k in close)
        return f"unknown config key {full_key!r}: did you mean {names}? ({where} has no key {leaf!r})"
    return (f"unknown config key {full_key!r}: {where} has no key {leaf!r}; its keys are: "
            f"{', '.join(sorted(keys)[:30])}")


def unknown_group_option_hint(message: str, group_options: Callable[[str], list[str]]) -> str | None:
    """A message listing a config group's options for Hydra's "Could not find 'group/option'"."""
    match = _GROUP_OPTION.search(message)
    if not match:
        return None
    group, option = match.group(1), match.group(2)
    options = sorted(o for o in group_options(group) if "/" not in o)
    if not options:
        return None
    close = _closest(option, options)
    lead = f"did you mean {' or '.join(f'{group}={c}' for c in close)}? " if close else ""
    return f"{group}={option} is not a {group} config: {lead}the {group} options are: {', '.join(options)}"


def missing_keys(cfg: DictConfig | ListConfig, prefix: str = "") -> list[str]:
    """Full keys whose value is literally ``???`` (never resolves an interpolation: a key that only
    interpolates a missing one, e.g. ``data.val_root: ${data.root}``, is not the one to set)."""
    out: list[str] = []
    keys = range(len(cfg)) if isinstance(cfg, ListConfig) else list(cfg.keys())
    for key in keys:
        full = f"{prefix}{key}" if isinstance(cfg, DictConfig) else f"{prefix.rstrip('.')}[{key}]"
        if full == "hydra":
            continue
        if OmegaConf.is_interpolation(cfg, key):
            continue
        node = cfg._get_node(key)
        if node is None:
            continue
        if node._is_missing():
            out.append(full)
        elif isinstance(node, DictConfig | ListConfig):
            out += missing_keys(node, f"{full}.")
    return out


def missing_value_hint(cfg: DictConfig, command: str) -> str | None:
    """One paragraph naming every mandatory key left unset in ``cfg`` (``None`` when there is none)."""
    keys = missing_keys(cfg)
    if not keys:
        return None
    where = []
    for key in keys:
        group = key.split(".", 1)[0]
        name = OmegaConf.select(cfg, f"{group}.name", default=None, throw_on_resolution_failure=False) \
            if "." in key else None
        where.append(f"{key} (needed by {group}={name})" if isinstance(name, str) else key)
    examples = " ".join(f"{k}={MISSING_EXAMPLES.get(k, '<value>')}" for k in keys)
    return (f"{' and '.join(where)} {'is' if len(keys) == 1 else 'are'} not set: add {'it' if len(keys) == 1 else 'them'} to the "
            f"command line, e.g. python -m dbd_lightning.{command} ... {examples}. Nothing was written.")
