"""Adapt a trained network to a folder of unlabeled photographs, no label: AdaBN or TENT.

Usage (``key=value`` arguments)::

    python -m dbd_lightning.adapt ckpt=zoo:dffnet_lite0_synth photos=DIR out=adapted.safetensors
        [method=adabn] [exclude_cuhk_tr1_holdout=0] [flip=false] [batch=8] [limit=0] [seed=0]
        [tent_lr=0.003] [tent_epochs=1] [tent_entropy_margin=1] [tent_sam_rho=0] [tent_reset_margin=0]

``method=adabn`` (default): every BatchNorm layer's running mean and variance are recomputed on the
photographs as the network sees them at test time (resized to the run's input size, normalised as its
eval transform), and the weights are kept (:mod:`dbd_lightning.models.components.batchnorm_stats`).
``method=tent``: AdaBN, then ``tent_epochs`` passes over the photos (a seeded order per pass) in which the
BatchNorm scales and shifts alone minimise the entropy of the network's own maps, one Adam step of
``tent_lr`` per batch (Wang et al., ICLR 2021: :mod:`dbd_lightning.models.components.entropy_minimization`),
then AdaBN again, so the running statistics are those of the adapted network. ``tent_entropy_margin=m`` < 1
keeps only the pixels whose entropy is at most ``m ln 2`` in the loss (EATA / SAR's reliable-sample filter;
SAR uses 0.4); 1, the default, is TENT's every pixel. ``tent_sam_rho=r`` > 0 takes each step from the gradient
at the point ``r`` away along the normalised gradient (SAR's sharpness-aware step; SAR uses 0.05; 0, the
default, is TENT's plain gradient; twice the forward and backward passes). ``tent_reset_margin=r`` > 0 is SAR's
model recovery: when the moving average of the step losses falls below ``r ln 2``, the scales and shifts go
back to where TENT started and Adam starts afresh (SAR's 0.2 nats for 1000 classes is ``r`` = 0.029; 0, the
default, never resets; it must be below ``tent_entropy_margin``, else every step resets). Each pass starts
its own Adam and moving average.
No mask is read. The result
is a released-style ``.safetensors`` file plus its model card (``.md``) that ``predict``, ``eval``,
``export`` and ``load_predictor`` take as ``ckpt=<file>``.

* ``ckpt``: what ``predict`` takes (``zoo:<name>``, a run folder, a ``.ckpt`` or released file).
* ``photos``: a folder of photographs (jpg/png/...; sub-folders are not read).
* ``out``: the ``.safetensors`` file to write (its ``.md`` card beside it); an existing file is
  replaced only if an earlier ``adapt``/release wrote it.
* ``exclude_cuhk_tr1_holdout=N``: ``photos`` is CUHK's image folder: leave out CUHK-TE-1 and the
  ``N``-image TR-1 hold-out that ``data=cuhk_tr1`` validates on (60), so no evaluation photo is used.
* ``flip``: also each photo mirrored. ``limit`` / ``seed``: a seeded random subset of ``limit`` photos
  (``seed`` also orders TENT's passes).

On the 60 held-out CUHK TR-1 photographs, ``zoo:dffnet_lite0_synth`` (synthetic training only) goes
from MAE 0.242 to 0.169 with the statistics of the 544 other TR-1 photos, and to 0.136 / 0.142 (seeds 0 / 1)
with ``method=tent`` at the defaults (experiments/label_free, section 2c: lr 3e-3 and one pass, chosen on
that hold-out among 1e-4 ... 1e-2 and 1 or 3 passes).
"""

from __future__ import annotations

from . import _env  # noqa: F401  (first: the environment defaults, before any library import)

# isort: split

import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from .utils import key_checks as kc
from .utils.cli import argv_or_usage
from .utils.errors import UserError, handle_user_errors

USAGE = __doc__ or ""
DEFAULTS = {"ckpt": None, "photos": None, "out": None, "method": "adabn", "exclude_cuhk_tr1_holdout": 0,
            "flip": False, "batch": 8, "limit": 0, "seed": 0, "tent_lr": 3e-3, "tent_epochs": 1,
            "tent_entropy_margin": 1.0, "tent_sam_rho": 0.0, "tent_reset_margin": 0.0}
METHODS = ("adabn", "tent")
#: the typed keys (:mod:`.utils.key_checks`): the project's one check of a command's values
KEY_CHECKS = {
    "photos": kc.existing("folder", example="<folder of photos>", nullable=False),
    "method": kc.choice(METHODS),
    "exclude_cuhk_tr1_holdout": kc.whole(0, example=60),
    "flip": kc.flag(),
    "batch": kc.whole(1, example=8),
    "limit": kc.whole(0, example=54),
    "seed": kc.whole(0, example=0),
    "tent_lr": kc.number(above=0, example=3e-3),
    "tent_epochs": kc.whole(1, example=1),
    "tent_entropy_margin": kc.number(above=0, high=1, example=0.4),
    "tent_sam_rho": kc.number(low=0, example=0.05),
    "tent_reset_margin": kc.number(low=0, below=1, example=0.029),  # 1: every step's loss is below it
}
_BOOL = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}


def _typed(key: str, value: str):
    """The text of ``key=value`` as the type its default has (``flip``: a word of :data:`_BOOL`; the counts:
    an integer); text that does not convert stays text, for :data:`KEY_CHECKS` to refuse by name."""
    if isinstance(DEFAULTS[key], bool):
        return _BOOL.get(value.lower(), value)
    for kind in (int, float):
        if isinstance(DEFAULTS[key], kind):
            try:
                return kind(value)
            except ValueError:
                return value
    return value


def parse_args(argv: Sequence[str]) -> dict:
    """``key=value`` arguments: keys among :data:`DEFAULTS`, values checked by :data:`KEY_CHECKS`; a bad one is a
    user error naming it."""
    args = dict(DEFAULTS)
    given: set[str] = set()
    for item in argv:
        key, sep, value = item.partition("=")
        if not sep or key not in DEFAULTS:
            raise UserError(f"{item!r} is not an argument of adapt; use key=value with a key among "
                            f"{', '.join(DEFAULTS)} (python -m dbd_lightning.adapt --help)")
        if key in given:
            raise UserError(f"{key} is given twice ({key}={args[key]} and {item}); give it once")
        given.add(key)
        args[key] = _typed(key, value)
    missing = [k for k in ("ckpt", "photos", "out") if not args[k]]
    if missing:
        raise UserError(f"adapt needs {', '.join(f'{k}=...' for k in missing)} (python -m dbd_lightning.adapt --help)")
    kc.check_keys(args, KEY_CHECKS)
    if 0 < args["tent_entropy_margin"] <= args["tent_reset_margin"]:
        raise UserError(f"tent_reset_margin={args['tent_reset_margin']:g} is not below tent_entropy_margin="
                        f"{args['tent_entropy_margin']:g}: every pixel in the loss is under the threshold, so every "
                        f"step would reset; use a smaller tent_reset_margin (SAR's is 0.029)")
    return args


def _batches(predictor, photos, indices: list[int], batch: int, flip: bool) -> Iterator:
    """The photos as ``predictor``'s network sees them (resized to its input size, normalised as the eval
    transform: :meth:`~.inference.predictor.CheckpointPredictor.network_input`), ``batch`` at a time."""
    for start in range(0, len(indices), batch):
        _, x = predictor.network_input([photos[i]["image"] for i in indices[start:start + batch]])
        yield x
        if flip:
            yield x.flip(-1)


def adapt(ckpt: str, photos: str, out: str, method: str = "adabn", exclude_cuhk_tr1_holdout: int = 0,
          flip: bool = False, batch: int = 8, limit: int = 0, seed: int = 0, tent_lr: float = 3e-3,
          tent_epochs: int = 1, tent_entropy_margin: float = 1.0, tent_sam_rho: float = 0.0,
          tent_reset_margin: float = 0.0) -> Path:
    """Write the adapted model (module docstring); returns the ``.safetensors`` path."""
    import random

    from .data.errors import DataConfigError
    from .data.unlabeled import UnlabeledFolder
    from .inference.predictor import CheckpointPredictor
    from .models.components.batchnorm_stats import recompute_batchnorm_statistics
    from .runs.released import training_data
    from .runs.resolver import resolve_checkpoint
    from .zoo.writer import NonFiniteWeightsError, release

    out_path = Path(out).expanduser()
    if out_path.suffix != ".safetensors":  # the release is written as <stem>.safetensors: name that file itself
        raise UserError(f"out={out}: the adapted model is written as a .safetensors file; name one")
    ignored = [k for k, v in dict(tent_lr=tent_lr, tent_epochs=tent_epochs, tent_entropy_margin=tent_entropy_margin,
                                  tent_sam_rho=tent_sam_rho, tent_reset_margin=tent_reset_margin).items()
               if method != "tent" and v != DEFAULTS[k]]
    if ignored:
        raise UserError(f"{', '.join(ignored)} set TENT, but method={method}: add method=tent, or drop "
                        f"{'them' if len(ignored) > 1 else 'it'}")
    run = resolve_checkpoint(ckpt)
    _check_out(out_path, run.ckpt)  # before the work: a refusal after minutes of TENT loses them
    # the run's network with its weights and input protocol (no model.net: refused, naming the config)
    predictor = CheckpointPredictor.from_run(run, device="cpu", backend="torch")
    try:
        folder = UnlabeledFolder(photos, exclude_cuhk_tr1_holdout)
    except DataConfigError as exc:
        raise UserError(str(exc).replace("data.unlabeled_root", "photos").replace(
            "data.exclude_cuhk_tr1_holdout", "exclude_cuhk_tr1_holdout")) from None
    indices = list(range(len(folder)))
    if limit and limit < len(indices):
        indices = sorted(random.Random(seed).sample(indices, limit))
    net = predictor.net
    n_layers = recompute_batchnorm_statistics(net, _batches(predictor, folder, indices, batch, flip))
    if n_layers == 0:
        raise UserError(f"ckpt={ckpt}: the network has no BatchNorm layer; there is nothing to adapt")
    tent = ""
    if method == "tent":
        entropies, kept, stepped, resets = _tent(predictor, folder, indices, batch, flip, seed, tent_lr, tent_epochs,
                                                 tent_entropy_margin, tent_sam_rho, tent_reset_margin)
        if not any(stepped):
            raise UserError(f"TENT took no step in {len(stepped)} batches (no pixel passed tent_entropy_margin="
                            f"{tent_entropy_margin:g}, or every gradient was non-finite, e.g. at tent_sam_rho="
                            f"{tent_sam_rho:g}): the result would be AdaBN's, labelled TENT; nothing was written. Raise "
                            f"tent_entropy_margin, lower tent_sam_rho, or use method=adabn")
        recompute_batchnorm_statistics(net, _batches(predictor, folder, indices, batch, flip))
        filtered = (f" of the pixels at most {tent_entropy_margin:g} ln 2 ({min(kept):.0%}-{max(kept):.0%} of them "
                    f"per batch)" if tent_entropy_margin < 1 else "")
        sar = f" with SAR's sharpness-aware gradient (rho {tent_sam_rho:g})" if tent_sam_rho > 0 else ""
        if tent_reset_margin > 0:
            after = ", ".join(str(sum(stepped[:i + 1])) for i in resets)  # counted in steps taken
            sar += (f", SAR's model recovery below {tent_reset_margin:g} ln 2 ({len(resets)} reset"
                    f"{'' if len(resets) == 1 else 's'}" + (f", after step(s) {after}" if resets else "") + ")")
        idle = len(stepped) - sum(stepped)
        skipped = (f" ({idle} of the {len(stepped)} batches of all passes took no step: no pixel in the loss or a "
                   f"non-finite gradient)" if idle else "")
        tent = (f"; then TENT: the BatchNorm scales and shifts alone minimised the maps' entropy{filtered}, "
                f"{sum(stepped)} Adam steps of lr {tent_lr:g}{sar} over {tent_epochs} pass(es){skipped} (mean entropy "
                f"{entropies[0]:.4f} at the first step, {entropies[-1]:.4f} at the last), and the statistics were "
                f"re-estimated after it")
    source_data = (training_data(run.ckpt.stem, run.ckpt.parent) if run.ckpt.suffix == ".safetensors"
                   else f"that of the run {run.run_dir}")
    what = (f"BatchNorm statistics ({n_layers} layers) re-estimated on {len(indices)} unlabeled photos of "
            f"{folder.root}{' and their mirror images' if flip else ''}, no mask read"
            + (f", CUHK TE-1 and the {exclude_cuhk_tr1_holdout}-image TR-1 hold-out left out"
               if exclude_cuhk_tr1_holdout else "") + (f", a random {limit} (seed {seed})" if limit and limit < len(folder)
                                                        else "") + tent)
    card = "\n".join([
        f"# {out_path.stem}", "",
        *([f"`{ckpt}` adapted to a folder of photographs by `python -m dbd_lightning.adapt` (AdaBN): the trained",
           "weights are kept; only the BatchNorm running statistics are the photographs'.", ""] if method == "adabn" else
          [f"`{ckpt}` adapted to a folder of photographs by `python -m dbd_lightning.adapt method=tent` (AdaBN, then",
           "TENT): the convolution weights are kept; the BatchNorm scales, shifts and running statistics are",
           "the photographs'.", ""]),
        f"Training data: {source_data}; {what}", "",
        "Command:", "", "    python -m dbd_lightning.adapt " + " ".join(
            f"{k}={v}" for k, v in dict(ckpt=ckpt, photos=photos, out=out, method=method,
                                         exclude_cuhk_tr1_holdout=exclude_cuhk_tr1_holdout, flip=str(flip).lower(),
                                         batch=batch, limit=limit, seed=seed,
                                         **(dict(tent_lr=f"{tent_lr:g}", tent_epochs=tent_epochs,
                                                 **({"tent_entropy_margin": f"{tent_entropy_margin:g}"}
                                                    if tent_entropy_margin < 1 else {}),
                                                 **({"tent_sam_rho": f"{tent_sam_rho:g}"} if tent_sam_rho > 0 else {}),
                                                 **({"tent_reset_margin": f"{tent_reset_margin:g}"}
                                                    if tent_reset_margin > 0 else {}))
                                            if method == "tent" else {})).items()), ""])
    state = {f"net.{k}": v for k, v in net.state_dict().items()}
    try:
        return release(run, out_path.stem, card, folder=out_path.parent, state=state,
                       extra={"adapted": what, "adapted_from": str(ckpt)})
    except NonFiniteWeightsError as exc:  # the release refuses them; say what diverged and the fix
        raise UserError(f"{exc}: the adaptation diverged" + (f" (tent_lr={tent_lr:g}); use a smaller tent_lr or "
                                                             "method=adabn" if method == "tent" else
                                                             "; check the photos and the checkpoint")) from None
    except UserError:  # a foreign file at out (ReleaseOutputError is also an OSError): its own message
        raise
    except OSError as exc:
        raise UserError(f"out={out}: cannot write the adapted model there ({type(exc).__name__}: "
                        f"{exc.strerror or exc}); choose a writable folder") from None


def _check_out(out: Path, source: Path) -> None:
    """Refuse, before any work, an ``out`` that cannot or must not be written: the source file itself, a shipped
    release, a path under a file, an unwritable folder, or files an earlier release did not write."""
    import os

    from .runs.released import WEIGHTS_DIR
    from .zoo.writer import refuse_foreign_release

    if out.resolve() == source.resolve():
        raise UserError(f"out={out} is the file being adapted (ckpt): adapt never replaces its source; name another file")
    if out.parent.resolve() == WEIGHTS_DIR.resolve():
        raise UserError(f"out={out} is in the package's released models ({WEIGHTS_DIR}), which adapt never "
                        "replaces; write it elsewhere")
    existing = out.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"out={out}: {existing} is a file, not a folder; choose another out")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"out={out}: the folder {existing} is not writable; choose a writable folder")
    if out.parent.is_dir():
        refuse_foreign_release(out.parent, out.stem)


def _tent(predictor, photos, indices: list[int], batch: int, flip: bool, seed: int, lr: float,
          epochs: int, margin: float, sam_rho: float = 0.0,
          reset_margin: float = 0.0) -> tuple[list[float], list[float], list[bool], list[int]]:
    """TENT's passes over the photos, each in its own seeded order; returns each batch's entropy, the
    fraction of pixels in its loss (``margin`` < 1: those with entropy <= ``margin`` ln 2; ``sam_rho`` > 0:
    SAR's sharpness-aware gradient), whether it took its Adam step, and the batches (counted over all
    passes) after which SAR's recovery (``reset_margin`` ln 2 > 0) reset the scales and shifts to where the
    first pass started. Each pass starts a new Adam and a new moving average."""
    import math
    import random

    from .models.components.entropy_minimization import batchnorm_affine, minimize_entropy

    max_entropy = margin * math.log(2) if margin < 1 else None  # 1: every pixel (H <= ln 2 always)
    entropies: list[float] = []
    kept: list[float] = []
    stepped: list[bool] = []
    resets: list[int] = []
    start = [p.detach().clone() for p in batchnorm_affine(predictor.net)]
    for epoch in range(epochs):
        order = list(indices)
        random.Random(seed * 1000 + epoch).shuffle(order)
        done, in_pass = len(entropies), []
        entropies += minimize_entropy(predictor.net, _batches(predictor, photos, order, batch, flip), lr=lr,
                                      max_entropy=max_entropy, kept=kept, sam_rho=sam_rho, stepped=stepped,
                                      reset_entropy=reset_margin * math.log(2), resets=in_pass, recovery=start)
        resets += [done + i for i in in_pass]
    return entropies, kept, stepped, resets


@handle_user_errors(log_file=False)
def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m dbd_lightning.adapt``; returns the exit code."""
    argv, code = argv_or_usage(argv, USAGE)
    if code is not None:
        return code
    args = parse_args(argv)
    path = adapt(**args)
    print(f"wrote {path} and {path.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
