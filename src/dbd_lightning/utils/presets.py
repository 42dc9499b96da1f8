"""``model=<paper>`` on the train command line means the paper's model *and* its recipe.

``python -m dbd_lightning.train model=ddffnet data=cuhk_tr1`` is the design card's command.
Some papers are more than a ``conf/model`` node: D-DFFNet is two training stages
(``experiment=ddffnet_paper``), DD and R-DFFNet need a depth teacher and their loss,
BTBNet its own loss, metrics and batch, Karaali's B-NET / E-NET their patch data. For those
names :func:`expand_model_presets` rewrites the command line before Hydra composes it::

    model=ddffnet      -> experiment=ddffnet_paper   (the experiment picks model=dffnet)
    model=dd / ddnet   -> experiment=ddnet_paper
    model=btbnet       -> experiment=btbnet_paper
    ...

so the run's ``.hydra/overrides.yaml`` records what actually ran, a resume composes the same
config and ``-m model=ddffnet,btbnet data=cuhk_tr1,synthetic`` sweeps the experiments. Other
command-line overrides still win over the experiment's (``data=synthetic`` replaces BTBNet's
CUHK x16 split). With an explicit ``experiment=`` a paper name stays a plain model choice
(the concrete model for names that are only presets: ``ddffnet`` -> ``dffnet``).
"""

from __future__ import annotations

from pathlib import Path

from .errors import ConfigError

#: model name -> (experiment of the paper's recipe, model config of that experiment)
MODEL_PRESETS: dict[str, tuple[str, str]] = {
    "ddffnet": ("ddffnet_paper", "dffnet"),   # D-DFFNet: stage 1 (DFFNet) + stage 2 (distilled)
    "d-dffnet": ("ddffnet_paper", "dffnet"),
    "dd": ("ddnet_paper", "ddnet"),                  # DD: DDNet + depth response distillation
    "ddnet": ("ddnet_paper", "ddnet"),
    "rdffnet": ("rdffnet", "rdffnet"),            # R-DFFNet: depth heads + depth teacher
    "btbnet": ("btbnet_paper", "btbnet"),         # BTBNet: BCE x streams, batch 1, BTBNet metrics
    "karaali_bnet": ("karaali_bnet", "karaali_bnet"),  # patch classifiers on their patch data
    "karaali_enet": ("karaali_enet", "karaali_enet"),
}
#: names that are pipelines, not trainable networks: what to run instead
NOT_TRAINABLE = {
    "karaali": "model=karaali is Karaali et al.'s whole estimation pipeline, which is not trained as one "
               "network: train its networks with model=karaali_bnet, then model=karaali_enet "
               "model.bnet_ckpt=<B-NET checkpoint>; run the pipeline with python -m dbd_lightning.predict "
               "model=karaali input=... output=...",
}


def _split_values(value: str) -> list[str] | None:
    """``a,b,c`` -> the names; ``None`` for sweep syntax this rewrite does not handle (ranges, globs...)."""
    if any(c in value for c in "()[]{}*$") or not value:
        return None
    return [v.strip().strip("'\"") for v in value.split(",")]


def _model_configs(conf_dir: str | Path | None) -> set[str]:
    if conf_dir is None:
        from .config import config_dir

        conf_dir = config_dir()
    return {p.stem for p in (Path(conf_dir) / "model").glob("*.yaml")}


def expand_model_presets(args: list[str], conf_dir: str | Path | None = None) -> list[str]:
    """Rewrite ``model=<paper>`` (module docstring) in a train command line (without the program name)."""
    model_args = [i for i, a in enumerate(args) if a.startswith("model=")]
    if not model_args:
        return list(args)
    i = model_args[-1]
    values = _split_values(args[i].split("=", 1)[1])
    if values is None:
        return list(args)
    for v in values:
        if v in NOT_TRAINABLE:
            raise ConfigError(NOT_TRAINABLE[v])
    presets = [v for v in values if v in MODEL_PRESETS]
    if not presets:
        return list(args)
    has_experiment = any(a.split("=", 1)[0].lstrip("+") == "experiment" for a in args)
    known = _model_configs(conf_dir)
    if has_experiment:  # the experiment decides the recipe: a preset name is just its model
        models = [v if v in known else MODEL_PRESETS[v][1] if v in MODEL_PRESETS else v for v in values]
        return [*args[:i], "model=" + ",".join(models), *args[i + 1:]]
    if len(presets) != len(values):
        others = [v for v in values if v not in MODEL_PRESETS]
        raise ConfigError(
            f"model={','.join(values)}: {', '.join(presets)} {'names' if len(presets) == 1 else 'name'} a paper's whole recipe "
            f"(experiment={', experiment='.join(MODEL_PRESETS[p][0] for p in presets)}) and cannot be swept together "
            f"with plain model configs ({', '.join(others)}); run two sweeps, or sweep experiment=... instead")
    experiments = [MODEL_PRESETS[v][0] for v in values]
    rest = [*args[:i], *args[i + 1:]]
    if len(values) == 1 and values[0] in known:  # keep the choice visible (same as the experiment's)
        return [*rest, f"experiment={experiments[0]}", f"model={values[0]}"]
    return [*rest, "experiment=" + ",".join(dict.fromkeys(experiments))]
