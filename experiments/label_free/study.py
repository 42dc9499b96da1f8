"""The label-free study: what unlabeled real photographs add to the released synthetic model.

    DBD_DATA_ROOT=<folder holding CUHK/> python experiments/label_free/study.py run --out <runs folder>
    python experiments/label_free/study.py table --out <runs folder>

Protocol (``COMMON``): every arm starts from ``zoo:dffnet_lite0_synth`` (``selftrain_adabn``: its AdaBN release; ``selftrain_tent_lite2``: the Lite2 TENT release) and trains 600 steps (6 epochs
of 100) at 320 px, batch 8, Adam 1e-4 with poly 0.9 per epoch; the 60-image TR-1 hold-out is scored
after the last step (``test_ckpt=last``: nothing is chosen on it). No real mask is read for training.

* ``finetune``: photographic synthetic scenes only (``experiment=dffnet_lite_synth_finetune``): the
  control, so that the gain of self-training is not the gain of 600 more steps.
* ``selftrain``: the same, with half of each batch (on average) unlabeled TR-1 photographs
  (hold-out excluded) labelled by the mean teacher (``experiment=dffnet_lite_synth_selftrain``).
* ``selftrain_adabn``: self-training started from the AdaBN release (``zoo:dffnet_lite0_synth_adabn``)
  with the synthetic batches' BatchNorm statistics kept apart (``model.domain_bn=true``,
  ``experiment=dffnet_lite_synth_selftrain_adabn``): does self-training add to AdaBN?
* ``selftrain_tent_lite2``: the same from the Lite2 TENT release (``zoo:dffnet_lite2_synth_tent``,
  ``experiment=dffnet_lite2_synth_selftrain_tent``): does self-training add to TENT?
* ``selftrain_tent_lite2_r2``: a second round, the same from ``zoo:dffnet_lite2_synth_selftrain_tent`` (the
  first round's release, TENT after it): do rounds add up?
* ``selftrain_tent_lite2_photos``: ``selftrain_tent_lite2`` on the photos alone, no synthetic half
  (``experiment=dffnet_lite2_synth_selftrain_tent_photos``): does the synthetic anchor help or hold back?
  (It helps: without it the maps degrade within 100 steps; README section 2f.)

Seeds: ``seed=S`` (batch order, scenes drawn, augmentations).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from study_driver import Arm, main  # noqa: E402

EPOCHS = 6  # x 100 steps (the experiments' limit_train_batches)
COMMON = ["logger=csv", "model.log_images=0", "test_ckpt=last", f"trainer.max_epochs={EPOCHS}",
          "real_report.enabled=false"]
RECIPES = {"selftrain": "experiment=dffnet_lite_synth_selftrain",
           "finetune": "experiment=dffnet_lite_synth_finetune",
           "selftrain_adabn": "experiment=dffnet_lite_synth_selftrain_adabn",
           "selftrain_tent_lite2": "experiment=dffnet_lite2_synth_selftrain_tent",
           "selftrain_tent_lite2_r2": "experiment=dffnet_lite2_synth_selftrain_tent "
                                      "model.net.init_ckpt=zoo:dffnet_lite2_synth_selftrain_tent",
           "selftrain_tent_lite2_photos": "experiment=dffnet_lite2_synth_selftrain_tent_photos"}


def build_arms(options: argparse.Namespace) -> list[Arm]:
    arms = []
    for seed in (0, 1):
        for recipe, experiment in RECIPES.items():
            name = f"{recipe}_s{seed}"
            arms.append(Arm(name, seed, [*experiment.split(), *COMMON, f"seed={seed}",
                                         f"hydra.run.dir={options.out / name}"]))
    return arms


if __name__ == "__main__":
    main(__doc__.split("\n")[0], build_arms, split="cuhk_tr1_val", label="hold-out", steps=EPOCHS * 100)
