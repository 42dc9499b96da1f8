"""Names that moved in the one-folder-per-paper redesign (and since), so that runs made before still work.

A run folder keeps the config it was made with (``.hydra/config.yaml``) and the command-line
overrides (``.hydra/overrides.yaml``). Both may name a module, a config key or an experiment
that has since moved or been renamed. :func:`migrate_config` and :func:`migrate_overrides`
rewrite them to today's names; they are applied where a saved run is read: rebuilding its
network (:meth:`dbd_lightning.runs.run.RunCheckpoint.load_config`) and resuming it
(:mod:`dbd_lightning.runs.resume`). Nothing on disk is changed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: dotted-path prefixes of ``_target_`` values (old -> new), most specific first
MOVED_TARGETS: tuple[tuple[str, str], ...] = (
    ("dbd_lightning.distill.callback.", "dbd_lightning.models.ddffnet.callback."),
    ("dbd_lightning.distill.teachers.", "dbd_lightning.models.ddffnet.teachers."),
    ("dbd_lightning.distill.depth_teachers.", "dbd_lightning.models.ddffnet.depth_teachers."),
    ("dbd_lightning.distill.projectors.", "dbd_lightning.models.ddffnet.projectors."),
    ("dbd_lightning.distill.schedules.", "dbd_lightning.models.ddffnet.schedules."),
    ("dbd_lightning.distill.Distillation", "dbd_lightning.models.ddffnet.callback.Distillation"),
    ("dbd_lightning.losses.feature_distill.", "dbd_lightning.models.ddffnet.feature_loss."),
    ("dbd_lightning.losses.depth.", "dbd_lightning.models.ddffnet.depth_losses."),
    ("dbd_lightning.models.depthnet.torch_model.", "dbd_lightning.models.ddffnet.depth_net."),
    ("dbd_lightning.models.depthnet.", "dbd_lightning.models.ddffnet.depth_net."),
    ("dbd_lightning.tasks.distillation.", "dbd_lightning.models.ddffnet.task."),
    ("dbd_lightning.tasks.depth.", "dbd_lightning.models.ddffnet.depth_task."),
    ("dbd_lightning.tasks.karaali.", "dbd_lightning.models.karaali.task."),
    ("dbd_lightning.data.karaali_patches.", "dbd_lightning.models.karaali.patches."),
    ("dbd_lightning.data.synthetic.btbnet.", "dbd_lightning.models.btbnet.pretrain_data."),
    # folders in one direction: the W&B logger (conf/logger/wandb.yaml) left utils/, which imports no metrics
    ("dbd_lightning.utils.wandb_tools.", "dbd_lightning.callbacks.wandb_tools."),
)
#: config keys (dotted, old -> new) and the interpolations that point at them
RENAMED_KEYS: dict[str, str] = {"data.B": "data.benchmark_module"}
#: config keys that no longer exist (nothing reads them)
DROPPED_KEYS: tuple[str, ...] = ("model.kind",)
#: keys that held a literal and are now computed by a config call (dotted key -> its ``_target_``, a function
#: of no arguments): a saved literal equal to what it returns is read as the call, so an old run does not differ
COMPUTED_KEYS: dict[str, str] = {"model.radii": "dbd_lightning.models.karaali.levels.bnet_radii"}
#: config-group options (group -> {old: new})
RENAMED_OPTIONS: dict[str, dict[str, str]] = {
    "experiment": {"ddffnet_two_stage": "ddffnet_paper", "dffnet_stage1": "dffnet_paper", "dd_paper": "ddnet_paper",
                   "dd_splits": "ddnet_splits", "dd_sweep": "ddnet_sweep", "dd_synthetic": "ddnet_synthetic"},
    "metrics": {"dd": "ddnet"},
}


def migrate_string(value: str) -> str:
    """A config string with moved module paths and renamed interpolated keys rewritten."""
    for old, new in MOVED_TARGETS:
        if value.startswith(old):
            return new + value[len(old):]
    for old, new in RENAMED_KEYS.items():
        value = value.replace("${" + old + "}", "${" + new + "}")
    return value


def _is_computed_value(saved: list, target: str) -> bool:
    """Whether ``saved`` holds the numbers that ``target`` (one of :data:`COMPUTED_KEYS`, never a config's) returns."""
    from hydra.utils import get_method  # imported, and the target's module loaded, only for such a key

    today = get_method(target)()
    try:
        return len(saved) == len(today) and all(float(a) == float(b) for a, b in zip(saved, today, strict=True))
    except (TypeError, ValueError):
        return False


def _migrate(node: Any, path: str) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            dotted = f"{path}{key}"
            if dotted in DROPPED_KEYS:
                continue
            new_key = RENAMED_KEYS.get(dotted, dotted).rsplit(".", 1)[-1]
            target = COMPUTED_KEYS.get(dotted)
            if target is not None and isinstance(value, list) and _is_computed_value(value, target):
                out[new_key] = {"_target_": target}
                continue
            out[new_key] = _migrate(value, f"{dotted}.")
        return out
    if isinstance(node, list):
        return [_migrate(v, path) for v in node]
    return migrate_string(node) if isinstance(node, str) else node


def migrate_config(container: dict) -> dict:
    """A saved run config (a plain container, unresolved) in today's names."""
    return _migrate(container, "")


def _old_preset_model(overrides: list[str]) -> str | None:
    """The ``model=<paper>`` of an old preset rewrite, to drop (:func:`migrate_overrides`), else None.

    Before paper names were options of the model group, ``model=ddnet`` was rewritten on the command
    line to ``experiment=ddnet_paper model=ddnet`` (the network config was then called ``ddnet``). That
    experiment selects today's network option itself, while today's ``model=ddnet`` pulls the same
    experiment in a second time: the pair is the experiment alone."""
    from ..models.registry import presets

    values = dict(o.lstrip("+").split("=", 1) for o in overrides if "=" in o and not o.startswith("~"))
    model, experiment = values.get("model"), values.get("experiment")
    if model is None or experiment is None or presets().get(model) != experiment:
        return None
    return f"model={model}"


def migrate_overrides(overrides: Iterable[str]) -> list[str]:
    """Saved command-line overrides in today's names (``experiment=dd_paper`` -> ``experiment=ddnet_paper``;
    the old preset rewrite's ``experiment=<recipe> model=<paper>`` -> ``experiment=<recipe>``)."""
    out = []
    for override in overrides:
        prefix = override[: len(override) - len(override.lstrip("+~"))]
        key, sep, value = override[len(prefix):].partition("=")
        key = RENAMED_KEYS.get(key, key)
        if sep and key in RENAMED_OPTIONS:
            value = RENAMED_OPTIONS[key].get(value, value)
        out.append(f"{prefix}{key}{sep}{migrate_string(value) if sep else ''}")
    drop = _old_preset_model(out)
    return [o for o in out if o.lstrip("+") != drop]
