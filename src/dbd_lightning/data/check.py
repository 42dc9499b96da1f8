"""Print the layout report of a data config: ``python -m dbd_lightning.data.check data=cuhk_tr1``.

Composes the same config tree as training (any override works:
``data.root=/datasets``, ``data.check=headers``) and checks every train /
val / test dataset of ``data.datamodule``; the default level here is ``full``
(every file decoded, every GT's content checked). Warnings (grey GTs, an
inverted GT polarity, validation / test sets that reuse training images) and
notes (the polarity verdict's evidence, or "not enough evidence to judge
polarity") are printed but do not fail. Exit status 0 = no error (warnings
possible), 2 = errors in the data (unreadable / truncated files, size
mismatches, duplicate stems, GTs that cannot be read as masks, ...) or a bad
config.
"""

from __future__ import annotations

from .. import _env  # noqa: F401  (first: the environment defaults, before any library import)

# isort: split

import sys

import hydra
from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from ..utils.config import config_dir
from ..utils.errors import EXIT_USER_ERROR, UserError, full_error_requested, handle_user_errors
from ..utils.validate import check_missing_values
from .errors import DatasetLayoutError
from .layout import check_datasets, format_report

USAGE = "usage: python -m dbd_lightning.data.check data=<option> [data.root=PATH] [data.check=full|headers|off]"


def compose_data(overrides: list[str]) -> DictConfig:
    with initialize_config_dir(config_dir(), version_base="1.3"):
        return compose("train", overrides=["++data.check=full", *overrides])


def user_error_in(exc: BaseException) -> UserError | None:
    """The :class:`UserError` behind ``exc`` (Hydra wraps errors raised while instantiating a target)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, UserError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


class _Unbuildable:
    """A dataset that could not be built (missing folder, no pairs): its error becomes one issue of the
    report, so one run of the check lists every problem (issue 26: it stopped at the first)."""

    def __init__(self, where: str, error: UserError) -> None:
        self.where, self.error = where, error

    def describe(self) -> str:
        return "not built"

    def layout_issues(self, level: str = "headers") -> list:
        from .layout import LayoutIssue

        return [LayoutIssue(self.where, "missing_folder", str(self.error).strip())]


def datasets_of(cfg: DictConfig) -> dict[str, dict]:
    """Instantiate the datasets of ``cfg.data.datamodule`` (not the datamodule: it would raise on problems);
    one that cannot be built is kept as an :class:`_Unbuildable` carrying its error."""
    dm = cfg.data.datamodule
    out: dict[str, dict] = {}
    for split in ("train", "val", "test"):
        out[split] = {}
        for name, node in (dm.get(split) or {}).items():
            try:
                out[split][name] = hydra.utils.instantiate(node)
            except Exception as exc:
                cause = user_error_in(exc)
                if cause is None:
                    raise
                if not isinstance(cause, DatasetLayoutError):
                    raise type(cause)(f"{split}/{name}: {cause}") from exc
                out[split][name] = _Unbuildable(f"{split}/{name}", cause)
    return out


def check(overrides: list[str]) -> tuple[int, str]:
    cfg = compose_data(overrides)
    check_missing_values(cfg, "data.check")
    level = cfg.data.get("check", "full")
    issues, summary = check_datasets(datasets_of(cfg), level)
    header = f"data={cfg.data.get('name')} root={cfg.data.get('root', '-')} check={level}"
    errors = [i for i in issues if not i.is_warning]
    return (EXIT_USER_ERROR if errors else 0), header + "\n" + format_report(issues, summary)


@handle_user_errors(log_file=False)
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__ + "\n" + USAGE)
        return 0
    if not any(a.startswith("data=") for a in argv):
        print(f"error: no data config chosen\n{USAGE}", file=sys.stderr)
        return EXIT_USER_ERROR
    try:
        code, report = check(argv)
    except (UserError, HydraException, OmegaConfBaseException) as exc:
        if full_error_requested():
            raise
        cause = user_error_in(exc) or exc
        print(f"error: {str(cause).strip()}", file=sys.stderr)
        return EXIT_USER_ERROR
    print(report)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
