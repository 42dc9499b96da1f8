#!/usr/bin/env bash
# DFFNet vs D-DFFNet vs PDNet on synthetic data, CPU, 3 seeds (experiments/ddffnet_synthetic.md).
# Usage: bash experiments/ddffnet_synthetic.sh [OUT_DIR]
# Two single-thread workers share the 2 cores (faster than one 2-thread process per job once the
# machine has any other load: OpenMP threads spin-wait when the cores are oversubscribed).
set -euo pipefail
OUT=${1:-/tmp/ddffnet_runs}
export WANDB_MODE=offline HF_HUB_OFFLINE=1 NO_ALBUMENTATIONS_UPDATE=1 OMP_NUM_THREADS=1
PY=${PY:-.venv/bin/python}
QUIET="logger=csv metrics.max_fbeta=true ~callbacks.progress_bar trainer.enable_progress_bar=false"
# 1. depth teacher: DepthNet-R18 on the renderer's depth ground truth, the demo's data and schedule
$PY -m dbd_lightning.train experiment=demo model=depthnet_small task_name=ddffnet_synthetic_depth seed=0 \
    $QUIET hydra.run.dir="$OUT/depth"
DEPTH=$(ls "$OUT"/depth/checkpoints/epoch_*.ckpt | tail -1)
two_stage() {  # DFFNet (stage 1) and D-DFFNet (stage 2: that seed's stage-1 DFFNet + the DepthNet)
  $PY -m dbd_lightning.train -m experiment=ddffnet_synthetic teacher.depth.ckpt="$DEPTH" seed="$1" \
      $QUIET hydra.sweep.dir="$OUT/two_stage/s$1"
}
pdnet() {      # PDNet, one stage, the demo recipe
  $PY -m dbd_lightning.train -m experiment=demo model=pdnet_small task_name=pdnet_synthetic seed="$1" \
      $QUIET hydra.sweep.dir="$OUT/pdnet/s$1"
}
(two_stage 0; two_stage 2; pdnet 1) > "$OUT/worker1.log" 2>&1 &
(two_stage 1; pdnet 0; pdnet 2) > "$OUT/worker2.log" 2>&1 &
wait
$PY experiments/seed_summary.py "DFFNet=$OUT/two_stage:stage1/" "D-DFFNet=$OUT/two_stage" "PDNet=$OUT/pdnet"
