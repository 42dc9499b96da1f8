"""``python -m dbd_lightning.pipelines.two_stage [overrides]``: D-DFFNet's two stages in one command.

The same as ``python -m dbd_lightning.train experiment=ddffnet_paper [overrides]`` (the experiment
is added when the command line names none); the stages are declared in
``conf/pipeline/ddffnet_two_stage.yaml`` and run by :mod:`dbd_lightning.pipelines.stages`.
"""

from __future__ import annotations

import sys


def main() -> None:
    if not any(a.split("=", 1)[0].lstrip("+") == "experiment" for a in sys.argv[1:]):
        sys.argv.append("experiment=ddffnet_paper")
    from ..train import main as train_main

    train_main()


if __name__ == "__main__":
    main()
