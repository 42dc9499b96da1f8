"""Evaluate and compare: ``python -m dbd_lightning.eval ckpt=<run> data=[cuhk_te1,dut_te,ctcug,ebd,ebd1305]``.

Models come from ``ckpt`` (one or a list of train run folders, ``.ckpt`` files
inside ``<run>/checkpoints`` or ``wandb:<run id>`` of local W&B runs; ``run_dir``
is the older single-run form), from ``maps`` (folders of saved prediction
maps of other methods, any polarity, see :mod:`dbd_lightning.reports.saved_maps`)
and from ``model=<name>`` (a non-learned pipeline with ``predict_image``, see
:mod:`dbd_lightning.inference.predictor`).
Each network is rebuilt from its run's saved config and loaded with
``torch.load(weights_only=True)``; nothing from a checkpoint is executed.

The output folder holds: ``results.md`` / ``results.csv`` / ``results.tex``
(rows = models, column groups = datasets, MAE / F-beta / IoU, the metric
convention stated under the table), ``results.json`` (everything, with the
checkpoints used), ``metrics.json`` (``test/<dataset>/<metric>`` of the first
model, the keys training logs), ``pr_<dataset>.png`` (+ ``pr_curves.json``) and
``qualitative_grid.png`` (input | GT | each model).

``data=`` / ``metrics=`` default to the first run's own test sets and
convention; every model is scored with the same convention on the same images.
"""

from __future__ import annotations

from . import _env  # noqa: F401  (first: the environment defaults, before any library import)

# isort: split

import glob
import logging
import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from .inference.predictor import CheckpointPredictor, build_predictor
from .inference.settings import check_inference_config, int8_settings, settings_per_mode
from .runs.resolver import find_checkpoint, resolve_checkpoint
from .runs.run import CheckpointSpecError, RunCheckpoint
from .utils import key_checks as kc
from .utils.atomic import write_json, write_text
from .utils.config import config_dir
from .utils.errors import ConfigError, handle_user_errors
from .utils.report import write_metrics
from .utils.validate import precompose

log = logging.getLogger(__name__)

#: conf/eval.yaml's keys: type, range (checked before any model loads or file is written). ``device`` /
#: ``backend`` / ``int8.*`` are checked by the predictor they build, ``infer.*`` / ``tile.*`` / ``image_size``
#: by :mod:`.inference.modes`.
KEY_CHECKS = {
    "num_workers": kc.whole(0, example=2),
    "wandb": kc.flag(),
    "report.pr_curves": kc.flag(),
    "report.iso_f": kc.numbers(above=0, below=1, example="[0.5,0.7,0.9]"),
    "report.beta2": kc.number(above=0, example=0.3),
    "report.grid_samples": kc.whole(0, example=3),
}


def check_config(cfg) -> None:
    """Refuse a bad value of a documented key (:data:`KEY_CHECKS`, and the inference settings through
    :func:`~dbd_lightning.inference.settings.check_inference_config`), naming it; nothing is loaded or written."""
    kc.check_keys(cfg, KEY_CHECKS, fix="Nothing was written.")
    check_inference_config(cfg)


def resolve_runs(cfg: DictConfig) -> list[RunCheckpoint]:
    """The checkpoints to compare, from ``ckpt`` (one spec or a list) and/or ``run_dir``.

    ``run_dir=<run> [ckpt=best|last|<file>]`` is the single-run form; otherwise each
    ``ckpt`` entry is a run folder (``which`` picks best/last), a ``.ckpt`` file
    inside ``<run>/checkpoints`` or ``wandb:<run id>``.
    """
    ckpt = cfg.get("ckpt")
    specs = [str(s) for s in ckpt] if isinstance(ckpt, ListConfig | list | tuple) else (
        [] if ckpt in (None, "") else [str(ckpt)])
    which, root = str(cfg.get("which", "best")), cfg.paths.log_dir
    if cfg.get("run_dir"):
        run_dir = Path(str(cfg.run_dir)).expanduser()
        if len(specs) > 1:
            raise ConfigError("run_dir= takes one ckpt (best | last | a file); compare runs with ckpt=[run1,run2,...]")
        if specs and specs[0] not in ("best", "last"):
            run = RunCheckpoint(run_dir, Path(specs[0]))
            if not run.config_file.is_file():
                raise CheckpointSpecError(f"{run_dir} is not a train run folder: {run.config_file} is missing")
            return [run if run.ckpt.is_file() else RunCheckpoint(run_dir, find_checkpoint(run_dir, specs[0]))]
        return [resolve_checkpoint(run_dir, specs[0] if specs else which, root)]
    if any(s in ("best", "last") for s in specs):
        raise ConfigError("ckpt=best/last needs run_dir=<run folder>; to compare runs use ckpt=[run1,run2] which=last")
    return [resolve_checkpoint(s, which, root) for s in expand_specs(specs)]


def expand_specs(specs: list[str]) -> list[str]:
    """Glob patterns (``outputs/sweep/multiruns/<stamp>/*``: every job of a sweep) -> the run folders /
    ``.ckpt`` files they match, sorted; other specs unchanged."""
    out: list[str] = []
    for spec in specs:
        if not glob.has_magic(spec):
            out.append(spec)
            continue
        hits = sorted(p for p in glob.glob(os.path.expanduser(spec))
                      if (Path(p) / ".hydra" / "config.yaml").is_file() or p.endswith(".ckpt"))
        if not hits:
            raise CheckpointSpecError(f"ckpt pattern {spec!r} matches no train run folder or .ckpt file")
        out += hits
    return out


def unique_names(labels: list[str], given) -> list[str]:
    names = [str(n) for n in given] if given else list(labels)
    if given and len(names) != len(labels):
        raise ConfigError(f"names has {len(names)} entries but {len(labels)} checkpoints were given")
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}#{seen[n]}")
    return out


def eval_config(cfg: DictConfig, runs: list[RunCheckpoint]) -> tuple[DictConfig, DictConfig]:
    """The ``data`` and ``metrics`` nodes to use: the command line's, else the first run's."""
    first = runs[0].load_config() if runs else None
    data = cfg.get("data") or (first.data if first is not None else None)
    metrics = cfg.get("metrics") or (first.get("metrics") if first is not None else None)
    if data is None:
        raise ConfigError("no test data: pass data=<config> (e.g. data=[cuhk_te1,dut_te]) when only maps are evaluated")
    data = OmegaConf.create(OmegaConf.to_container(data, resolve=False))
    root = OmegaConf.create({"data": data, "paths": cfg.paths})
    with open_dict(root):
        root.data.num_workers = int(cfg.num_workers)
        if "cache" in root.data:
            root.data.cache = False
    return root.data, (metrics if metrics is not None else OmegaConf.create({"preset": "ddffnet"}))


def write_report(out: Path, result, convention: str, sources: dict[str, str], cfg: DictConfig) -> dict[str, Path]:
    """Tables, curves, grid and JSON files of one evaluation; returns what was written."""
    from .reports import csv_table, latex_table, markdown_table, plot_pr_curves, qualitative_grid

    files: dict[str, Path] = {}
    notes = ["Models: " + "; ".join(f"{k} = {v}" for k, v in sources.items()),
             "Images: " + ", ".join(f"{k} {n}" for k, n in result.counts.items())]
    md = markdown_table(result.results, convention, notes=notes)
    files["md"] = out / "results.md"
    write_text(files["md"], md + "\n")
    files["csv"] = out / "results.csv"
    write_text(files["csv"], csv_table(result.results))
    files["tex"] = out / "results.tex"
    write_text(files["tex"], latex_table(result.results, convention))
    files["json"] = out / "results.json"
    write_json(files["json"], {"convention": convention, "sources": sources, "counts": result.counts,
                               "results": result.results})
    rep = cfg.report
    if rep.pr_curves and result.curves:
        positive = "blur" if "blur positive" in convention else "in-focus"
        beta2 = float(OmegaConf.select(cfg, "report.beta2", default=0.3))
        for ds, curves in result.curves.items():
            files[f"pr_{ds}"] = plot_pr_curves(curves, out / f"pr_{ds}.png", title=f"PR curve: {ds}",
                                               positive=positive, beta2=beta2,
                                               iso_f=list(rep.iso_f) if rep.iso_f else ())
        files["pr_json"] = out / "pr_curves.json"
        write_json(files["pr_json"], {ds: {m: {"precision": p, "recall": r} for m, (p, r) in c.items()}
                                      for ds, c in result.curves.items()}, indent=None)
    if rep.grid_samples and result.grid_rows:
        files["grid"] = qualitative_grid(result.grid_rows, list(result.results), out / "qualitative_grid.png")
        if len(result.counts) > 1:  # and one grid per dataset
            for ds in result.counts:
                rows = [r for r in result.grid_rows if r["label"].startswith(f"{ds}/")]
                files[f"grid_{ds}"] = qualitative_grid(rows, list(result.results), out / f"grid_{ds}.png")
    return files


def evaluate(cfg: DictConfig) -> dict[str, float]:
    # torch, torchmetrics, matplotlib: imported by the evaluation, not with the module (--help needs none)
    from .inference.backends import note_pipeline_backend
    from .metrics.describe import describe_convention
    from .reports import SavedMaps, evaluate_sources

    check_config(cfg)
    runs = resolve_runs(cfg)
    maps_cfg = cfg.get("maps") or {}
    if not runs and not maps_cfg and cfg.get("model") is None:
        raise ConfigError("nothing to evaluate: pass ckpt=<run dir | .ckpt | wandb:<id>> (or a list), maps "
                         "and/or model=<pipeline>")
    import lightning as L

    L.seed_everything(cfg.seed, workers=True)
    data_cfg, metrics_cfg = eval_config(cfg, runs)
    names = unique_names([r.label for r in runs], cfg.get("names"))
    per_mode = settings_per_mode(cfg)
    int8 = int8_settings(cfg)
    sources: dict = {}
    origin: dict[str, str] = {}
    for name, run in zip(names, runs, strict=True):
        for settings in per_mode:  # infer.mode=[resize,tile]: one row per mode, named "<run> [<mode>]"
            row = name if len(per_mode) == 1 else f"{name} [{settings.label}]"
            sources[row] = CheckpointPredictor.from_run(run, settings, device=cfg.device, int8=int8,
                                                        backend=str(cfg.get("backend", "auto")))
            origin[row] = str(run.ckpt) + ("" if settings.label == "resize" else f" (infer {settings.label})")
    if cfg.get("model") is not None:  # a non-learned pipeline (model=<name>, predict_image protocol)
        choice = HydraConfig.get().runtime.choices.get("model") if HydraConfig.initialized() else None
        note_pipeline_backend(str(cfg.get("backend", "auto")), choice)
        predictor, pname = build_predictor(model_cfg=cfg.model, model_name=choice)
        sources[pname] = predictor
        origin[pname] = f"pipeline model={pname}"
    for name, spec in maps_cfg.items():
        if name in sources:
            raise ConfigError(f"maps.{name}: the name is already used by a checkpoint (set names=[...])")
        kwargs = OmegaConf.to_container(spec, resolve=True)
        sources[name] = SavedMaps(name=name, **kwargs)
        origin[name] = f"saved maps {kwargs.get('root') or kwargs.get('dirs')} ({kwargs.get('polarity', 'white_in_focus')})"

    datamodule = hydra.utils.instantiate(data_cfg.datamodule)
    datasets = getattr(datamodule, "test_sets", None)
    if not datasets:
        raise ConfigError("the data config defines no test set (data.datamodule.test is empty)")
    metric_kwargs = OmegaConf.to_container(metrics_cfg, resolve=True)
    result = evaluate_sources(sources, datasets, metric_kwargs, pr_curves=bool(cfg.report.pr_curves),
                              grid_samples=int(cfg.report.grid_samples), num_workers=int(cfg.num_workers))
    convention = describe_convention(**metric_kwargs)
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = write_report(out, result, convention, origin, cfg)
    first = next(iter(result.results))
    metrics = result.flat(first)
    write_metrics(out / "metrics.json", metrics)
    if cfg.get("wandb"):
        from .callbacks.wandb_tools import log_eval_report

        log_eval_report(cfg, result, files, convention)
    print("\n" + files["md"].read_text() + f"\noutputs: {out}\n", flush=True)
    return metrics


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="eval")
def _hydra_main(cfg: DictConfig) -> None:
    with handle_user_errors():  # error: <message>, exit 2, also in eval.log
        evaluate(cfg)


def main() -> None:
    """CLI entry point: an unknown option / key is ``error: ...`` + exit 2 before Hydra creates a folder."""
    with handle_user_errors(log_file=False):
        precompose("eval", sys.argv[1:], check=check_config)
    _hydra_main()


if __name__ == "__main__":
    main()
