"""Print the layout report of a data config: ``python -m dbd_lightning.data.check data=cuhk_tr1``.

Composes the same config tree as training (any override works:
``data.root=/datasets``, ``data.check=headers``) and checks every train /
val / test dataset of ``data.datamodule``; the default level here is ``full``
(every file decoded). Exit status 0 = no problem, 1 = problems, 2 = bad config.
"""

from __future__ import annotations

import sys

import hydra
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from ..utils.config import config_dir
from ..utils.errors import handle_user_errors
from .layout import check_datasets, format_report

USAGE = "usage: python -m dbd_lightning.data.check data=<option> [data.root=PATH] [data.check=full|headers|off]"


def compose_data(overrides: list[str]) -> DictConfig:
    with initialize_config_dir(config_dir(), version_base="1.3"):
        return compose("train", overrides=["++data.check=full", *overrides])


def datasets_of(cfg: DictConfig) -> dict[str, dict]:
    """Instantiate the datasets of ``cfg.data.datamodule`` (not the datamodule: it would raise on problems)."""
    dm = cfg.data.datamodule
    return {split: {name: hydra.utils.instantiate(node) for name, node in (dm.get(split) or {}).items()}
            for split in ("train", "val", "test")}


def check(overrides: list[str]) -> tuple[int, str]:
    cfg = compose_data(overrides)
    level = cfg.data.get("check", "full")
    issues, summary = check_datasets(datasets_of(cfg), level)
    header = f"data={cfg.data.get('name')} root={cfg.data.get('root', '-')} check={level}"
    return (1 if issues else 0), header + "\n" + format_report(issues, summary)


@handle_user_errors(log_file=False)
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__ + "\n" + USAGE)
        return 0
    if not any(a.startswith("data=") for a in argv):
        print(f"no data config chosen\n{USAGE}", file=sys.stderr)
        return 2
    code, report = check(argv)
    print(report)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
