"""Generated bad-value cases for every key=value CLI: (CLI, key, bad value) triples from the configs.

The keys are the CLI's documented keys, read from its own config file (``conf/<cli>.yaml``, every leaf
that is not an interpolation or Hydra's; for train also the data config's top-level values), and for
synth from its parser's defaults. Each key gets bad values by the type of its default: a word for a
number or a switch (wrong type), a negative number (out of range) for a positive default, a path that
does not exist for a path-like key, an unknown option for a word. A CLI given one must exit 2 with
``error: ...`` naming the key (or the bad value), and no traceback.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

CONF = Path(__file__).resolve().parents[1] / "conf"
MISSING_PATH = "/nonexistent/dbd_bad_value"
#: an output folder that cannot be made (under a file of the scratch folder: nothing is created anywhere)
UNWRITABLE = "files/a_file/out"
#: keys naming something to read: a path that does not exist is their bad value
INPUT_KEYS = ("root", "ckpt", "ckpt_path", "test_ckpt", "input", "edges", "weights_file")
#: keys naming where to write: a folder under a file is their bad value
OUTPUT_KEYS = ("output", "output_dir", "out", "run_dir")
#: keys that take any value by design (free text, names, seeds), never a "bad" one
FREE = {"tags", "name", "names", "task_name", "sweep_name", "seed", "int8.seed", "compile.backend", "data.name",
        "data.monitor", "optimized_metric", "maps", "real_report.compare_zoo", "wandb_run.project", "wandb_run.tags"}
#: train's key=value CLIs in this generator and the config file each documents its keys in
CONFIGS = {"train": "train.yaml", "eval": "eval.yaml", "predict": "predict.yaml", "export": "export.yaml"}


def _leaves(node: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if not isinstance(node, DictConfig):
        return out
    for key in node.keys():
        full = f"{prefix}{key}"
        if full in ("defaults", "hydra") or OmegaConf.is_interpolation(node, key) or OmegaConf.is_missing(node, key):
            if OmegaConf.is_missing(node, key):
                out[full] = None
            continue
        value = node._get_node(key)
        if isinstance(value, DictConfig):
            if len(value) == 0:
                continue
            out.update(_leaves(value, f"{full}."))
        else:
            out[full] = OmegaConf.to_container(value) if isinstance(value, ListConfig) else value._value()
    return out


def _group_files(defaults: Any, group: str, inside: bool = False) -> list[DictConfig]:
    """The files of ``group`` that a defaults list composes, in order (an option's own defaults list first)."""
    out = []
    for entry in defaults or []:
        if isinstance(entry, DictConfig):
            option = entry.get(group)
        else:  # a bare entry: another option of the same group inside a group file, else a file of the primary's
            option = entry if inside and entry != "_self_" else None
        if option:
            node = OmegaConf.load(CONF / group / f"{option}.yaml")
            out += [*_group_files(node.get("defaults"), group, inside=True), node]
    return out


#: config groups whose keys are the CLI's own top-level keys (``# @package _global_``), documented there
GLOBAL_GROUPS = ("inference",)


def documented_keys(cli: str) -> dict[str, Any]:
    """key -> default of the CLI's documented keys (its config file and the ``_global_`` groups it composes)."""
    if cli == "synth":
        from dbd_lightning.synth import parse_args

        defaults = parse_args(["out=x"])
        return {k: v for k, v in defaults.items() if k not in ("overrides", "out")} | {"out": "x"}
    config = OmegaConf.load(CONF / CONFIGS[cli])
    keys = _leaves(OmegaConf.merge(config, *(f for g in GLOBAL_GROUPS for f in _group_files(config.get("defaults"), g))))
    if cli == "train":
        data = OmegaConf.load(CONF / "data" / "synthetic.yaml")
        keys |= {f"data.{k}": v for k, v in _leaves(data).items() if "." not in k}
    return {k: v for k, v in keys.items() if k not in FREE}


def bad_values(key: str, default: Any) -> list[str]:
    leaf = key.rsplit(".", 1)[-1]
    if leaf in INPUT_KEYS and (default is None or isinstance(default, str)):
        return [MISSING_PATH] if leaf != "run_dir" else [MISSING_PATH]
    if leaf in OUTPUT_KEYS and (default is None or (isinstance(default, str) and "/" in default) or leaf != "output"):
        return [UNWRITABLE if leaf != "run_dir" else MISSING_PATH]
    if isinstance(default, bool):
        return ["maybe"]
    if isinstance(default, int | float):
        return ["abc"] + (["-7"] if default > 0 else [])
    if isinstance(default, list):
        return ["abc"]
    if default is None:
        return ["abc"]
    return ["no_such_option"]


def triples(clis: tuple[str, ...] = ("train", "eval", "predict", "export", "synth")) -> list[tuple[str, str, str]]:
    return [(cli, key, value) for cli in clis for key, default in sorted(documented_keys(cli).items())
            for value in bad_values(key, default)]


def verdict(code: int, err: str, key: str, value: str) -> str | None:
    """``None`` when the CLI answered as required, else what was wrong."""
    if code != 2:
        return f"exit {code}"
    if "Traceback" in err:
        return "traceback"
    if "error: " not in err:
        return "no error: line"
    message = err[err.index("error: "):]
    leaf = key.rsplit(".", 1)[-1]

    def named(word: str) -> bool:  # as a whole key ('train' is not named by 'trainer.limit_train_batches')
        return re.search(rf"(?<![\w.]){re.escape(word)}(?![\w])", message) is not None

    if not named(key) and not (named(leaf) and value in message) and MISSING_PATH not in message \
            and UNWRITABLE.split("/")[1] not in message:
        return "key not named"
    return None
