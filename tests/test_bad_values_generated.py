"""Every key=value CLI x each documented key x a bad value (generated, tests/bad_values_matrix.py):
``error: ...`` naming the key, exit 2, no traceback, and no file changed outside the run folders.

The CLIs run in process (``main()`` with ``sys.argv`` set) in a scratch folder holding a tiny real run
(``runs/a``), one small photo and a plain file. The full matrix is ``slow``; the fast suite runs a fixed
sample of it (:data:`FAST_SAMPLE`). The triples that do not yet
answer as required are listed in ``tests/bad_values_known.txt`` and run as strict expected failures, so
fixing one (or breaking another) changes the result.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from hydra.core.global_hydra import GlobalHydra
from PIL import Image

from .bad_values_matrix import triples, verdict
from .helpers import TINY
from .run_fixtures import make_run

KNOWN = Path(__file__).with_name("bad_values_known.txt")
ALL = triples()
#: the key=value CLIs' modules and the base arguments that make a run of them small
BASE = {
    "train": ("train", ["model=dffnet_small", *TINY, "logger=none", "trainer.max_epochs=1",
                        "++trainer.limit_train_batches=1", "++trainer.limit_val_batches=1", "test=false"]),
    "eval": ("eval", ["run_dir=runs/a"]),
    "predict": ("predict", ["ckpt=runs/a", "input=files/photo.png", "output=pred"]),
    "export": ("export", ["ckpt=runs/a", "formats=[torchscript]", "check=false"]),
    "synth": ("synth", ["out=synth_out", "n=1", "size=32", "progress=false"]),
}
#: fast suite: a fixed sample of the matrix, cases per CLI among those found to pass (each refused up front: seconds)
FAST_SAMPLE = [("train", "data.batch_size", "-7"), ("eval", "backend", "no_such_option"),
               ("eval", "report.beta2", "-7"), ("predict", "tile.window", "no_such_option"),
               ("predict", "edges", "/nonexistent/dbd_bad_value"), ("export", "atol", "abc"),
               ("export", "formats", "abc"), ("synth", "size", "abc")]


def _known() -> set[tuple[str, str, str]]:
    if not KNOWN.exists():
        return set()
    rows = (ln.split("#", 1)[0].split() for ln in KNOWN.read_text().splitlines())
    return {(r[0], r[1], r[2]) for r in rows if len(r) == 3}


def _tree(root: Path, skip: tuple[str, ...]) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): ("<dir>" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(root.rglob("*")) if not p.relative_to(root).as_posix().startswith(skip)}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("bad_values"), seed=0)


def run_case(cli: str, key: str, value: str, scratch: Path, tiny_run: Path, monkeypatch, capsys) -> str | None:
    """Run one triple; ``None`` when the CLI answered as required, else what was wrong."""
    import importlib

    monkeypatch.chdir(scratch)
    monkeypatch.setenv("DBD_LOG_DIR", str(scratch / "outputs"))
    monkeypatch.setenv("DBD_CACHE_DIR", str(scratch / "outputs" / "cache"))
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    shutil.copytree(tiny_run, scratch / "runs" / "a")
    (scratch / "files").mkdir()
    (scratch / "files" / "a_file").write_text("not a folder\n")
    Image.fromarray(np.full((48, 64, 3), 90, np.uint8)).save(scratch / "files" / "photo.png")
    module, base = BASE[cli]
    args = [a for a in base if a.split("=", 1)[0] != key] + [f"{key}={value}"]
    before = _tree(scratch, ("outputs",))
    mod = importlib.import_module(f"dbd_lightning.{module}")
    GlobalHydra.instance().clear()
    for lg in [logging.root, *(x for x in logging.Logger.manager.loggerDict.values() if isinstance(x, logging.Logger))]:
        lg.handlers = [h for h in lg.handlers if not getattr(getattr(h, "stream", None), "closed", False)]
    code = 0
    try:
        if cli == "synth":
            code = mod.main(args)
        else:
            monkeypatch.setattr(sys, "argv", [module, *args])
            mod.main()
    except SystemExit as exc:
        code = int(exc.code or 0) if not isinstance(exc.code, str) else 1
    except Exception as exc:  # noqa: BLE001 -- a crash is a verdict too
        import traceback

        print("Traceback (in process)\n" + "".join(traceback.format_exception(exc)), file=sys.stderr)
        code = 1
    err = capsys.readouterr().err
    problem = verdict(code, err, key, value)
    if problem is None and _tree(scratch, ("outputs", "pred", "synth_out")) != \
            {k: v for k, v in before.items() if not k.startswith(("pred", "synth_out"))}:
        problem = "files changed outside the run folders"
    return problem


def _params(cases):
    known = _known()
    return [pytest.param(*c, id="-".join(c), marks=[pytest.mark.xfail(strict=True, reason="known: not yet exit 2 "
                                                                      "naming the key")] if c in known else [])
            for c in cases]


@pytest.mark.parametrize("cli,key,value", _params(FAST_SAMPLE))
def test_bad_value_sample(cli, key, value, tmp_path, tiny_run, monkeypatch, capsys):
    assert (cli, key, value) in ALL  # the sample is drawn from the generated matrix
    assert run_case(cli, key, value, tmp_path, tiny_run, monkeypatch, capsys) is None


@pytest.mark.slow
@pytest.mark.parametrize("cli,key,value", _params(ALL))
def test_bad_value_matrix(cli, key, value, tmp_path, tiny_run, monkeypatch, capsys):
    problem = run_case(cli, key, value, tmp_path, tiny_run, monkeypatch, capsys)
    assert problem is None, problem


def test_the_matrix_covers_every_cli_and_is_generated():
    clis = {c for c, _, _ in ALL}
    assert clis == set(BASE)
    assert len(ALL) >= 100 and len(set(ALL)) == len(ALL)
    assert _known() <= set(ALL), "bad_values_known.txt lists a triple the generator no longer makes"
