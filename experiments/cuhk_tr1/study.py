"""The CUHK TR-1 study at one short, equal budget: every arm trained the same way, scored the same way.

    DBD_DATA_ROOT=<folder holding CUHK/> python experiments/cuhk_tr1/study.py run --out <runs folder>
    python experiments/cuhk_tr1/study.py table --out <runs folder> > experiments/cuhk_tr1/study.md

Protocol (``COMMON``): 192 x 192 px, batch 8, 272 steps (4 epochs of the 544 training pairs), Adam
2e-4 with poly 0.9 stepped per step over the 272 steps, horizontal flips, colour jitter 0.1, the hold-out
scored after the last step (no epoch choice: ``test_ckpt=last``). Each arm changes one thing: the start
(synthetic release or ImageNet Lite0/1/2), the share of TR-1 (seeded subsets), the batches (real +
synthetic), the crops, the weights' moving average, or the stage (D-DFFNet stage 2 distilled from the
same seed's stage-1 run and the offline depth teacher). Seeds: ``seed=S data.subset_seed=S``.

``run`` trains the arms one after another in this order and resumes after a stop; ``table`` prints the
hold-out MAE / F / IoU of every finished arm, mean and range over seeds; ``curves`` writes every finished
arm's validation curve and final scores as CSV (``experiments/study_driver.py``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from study_driver import Arm, main  # noqa: E402

STEPS = 272  # 4 epochs of the 544 training pairs at batch 8
COMMON = [
    "experiment=dffnet_lite_cuhk",
    "logger=csv",
    "data.image_size=[192,192]",
    "trainer.max_epochs=-1",
    f"+trainer.max_steps={STEPS}",
    "model.scheduler_interval=step",
    f"model.scheduler.total_iters={STEPS}",
    "+trainer.val_check_interval=68",
    "trainer.check_val_every_n_epoch=null",
    "test_ckpt=last",
    "model.log_images=0",
]
STAGE2 = [  # replaces experiment=dffnet_lite_cuhk; the epoch-based beta schedule needs whole epochs
    "experiment=ddffnet_cuhk_cpu_stage2",
    "trainer.max_epochs=4",
    "callbacks.distillation.switch_epoch=1",  # the paper's 15 of 75 epochs, at 4 epochs
]
IMAGENET = "model.net.init_ckpt=null"


def build_arms(options: argparse.Namespace) -> list[Arm]:
    out, depth_teacher = options.out, options.depth_teacher

    def arm(name: str, seed: int, overrides: list[str], stage2_of: str | None = None) -> Arm:
        """``stage2_of``: the stage-1 arm whose last checkpoint is the defocus teacher of this stage-2 arm."""
        args, skip = list(COMMON), None
        if stage2_of:
            args = [a for a in args if not a.startswith(("experiment=", "trainer.max_epochs="))] + STAGE2 + [
                f"teacher.defocus.ckpt={out / stage2_of / 'checkpoints' / 'last.ckpt'}",
                f"teacher.depth.ckpt={depth_teacher or '<depth teacher>'}",
            ]
            skip = None if depth_teacher else "no --depth-teacher"
        args += [f"seed={seed}", f"data.subset_seed={seed}", *overrides, f"hydra.run.dir={out / name}"]
        return Arm(name, seed, args, skip)

    def s1(init: str, frac: float, seed: int, tag: str = "", extra: tuple[str, ...] = ()) -> Arm:
        """A stage-1 arm; ``init``: ``synth`` (zoo:dffnet_lite0_synth) or ``imagenet_lite0|1|2``."""
        over = [] if init == "synth" else [IMAGENET, f"model.net.encoder=efficientnet_{init.split('_')[1]}"]
        name = f"s1_{init}_f{frac:g}" + (f"_{tag}" if tag else "") + f"_s{seed}"
        return arm(name, seed, over + [f"data.train_fraction={frac}", *extra])

    arms: list[Arm] = []
    for seed in (0, 1):  # stage 1 vs stage 2 and the two starts, at 100 %
        base = s1("synth", 1.0, seed)
        arms += [base, arm(f"s2_synth_f1_s{seed}", seed, [], stage2_of=base.name), s1("imagenet_lite0", 1.0, seed)]
    for frac in (0.1, 0.3):  # label efficiency
        for seed in (0, 1):
            arms += [s1("synth", frac, seed), s1("imagenet_lite0", frac, seed)]
    for seed in (0, 1):  # encoders, real + synthetic batches, crops
        arms += [
            s1("imagenet_lite2", 1.0, seed),
            s1("imagenet_lite1", 1.0, seed),
            s1("synth", 1.0, seed, "mixed", ("data=cuhk_tr1_mixed", "data.render_size=[192,192]")),
            s1("synth", 1.0, seed, "crops", ("+data.datamodule.train_transform.crop_scale=[0.5,1.0]",)),
        ]
    for seed in (0, 1):  # the weights' moving average (callbacks=ema): ~50 of the 272 steps
        arms.append(s1("synth", 1.0, seed, "ema", ("callbacks=ema", "callbacks.weight_ema.decay=0.98")))
    return arms


def _depth_teacher_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--depth-teacher", default=None,
                        help="the offline depth teacher (run folder or .ckpt) of the stage-2 arms")


if __name__ == "__main__":
    main(__doc__.split("\n")[0], build_arms, split="cuhk_tr1_val", label="hold-out", steps=STEPS,
         add_options=_depth_teacher_option)
