"""Summarise the DD with/without depth distillation runs (experiments/ddnet_synthetic.md).

    python experiments/ddnet_synthetic_summary.py NONE_SWEEP_DIR SYNTHETIC_SWEEP_DIR

Per-seed test metrics and mean +- std per arm (:mod:`seed_summary` does the work).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from seed_summary import main as seed_summary  # noqa: E402

if __name__ == "__main__":
    none_dir, synthetic_dir = sys.argv[1:3]
    seed_summary([f"without distillation (teacher/depth=none)={none_dir}",
                  f"with distillation (synthetic DepthNet teacher)={synthetic_dir}"])
