"""Every config a README under src/ or experiments/ cites exists: ``conf/...`` paths (globs and
``{a,b}`` alternatives included) and ``group=name`` choices of a config group (``metrics=ddnet``)."""

import itertools
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
READMES = sorted(p for top in ("src", "experiments") for p in (ROOT / top).rglob("README.md"))
GROUPS = sorted(p.name for p in CONF.iterdir() if p.is_dir())
PATH = re.compile(r"(?<![\w/.])conf/[\w./*{},-]*")
CHOICE = re.compile(r"(?<![\w.+/-])(" + "|".join(GROUPS) + r")=([\w/{},-]+)")


def _expand(text: str) -> list[str]:
    """``a_{b,c}_d`` -> ``a_b_d``, ``a_c_d`` (every ``{...}`` group)."""
    parts = re.split(r"\{([^{}]*)\}", text)
    options = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
    return ["".join(combo) for combo in itertools.product(*options)]


def cited_configs(text: str) -> list[str]:
    """The config paths ``text`` cites, as globs relative to the repository root."""
    out = {c for m in PATH.findall(text) for c in _expand(m.rstrip(".,"))}
    for group, value in CHOICE.findall(text):
        for name in re.split(r",(?![^{]*\})", value.rstrip(".,")):  # a sweep a,b (commas outside braces)
            out.update(f"conf/{group}/{n}.yaml" for n in _expand(name) if n)
    return sorted(out)


def test_the_citation_patterns():
    text = ("Configs: `conf/model/ddnet*.yaml`, conf/metrics/dd.yaml. See conf/eval.yaml and myconf/x, "
            "src/conf/y; `metrics=ddnet` or `data=karaali_{bnet,enet}_patches`, -m model=a,b_{c,d}, not data.size=3 or +model.x=1.")
    assert cited_configs(text) == [
        "conf/data/karaali_bnet_patches.yaml", "conf/data/karaali_enet_patches.yaml", "conf/eval.yaml",
        "conf/metrics/dd.yaml", "conf/metrics/ddnet.yaml", "conf/model/a.yaml", "conf/model/b_c.yaml",
        "conf/model/b_d.yaml", "conf/model/ddnet*.yaml"]


def test_readmes_and_groups_are_found():
    assert {p.relative_to(ROOT).as_posix() for p in READMES} >= {
        "src/dbd_lightning/models/ddnet/README.md", "experiments/README.md"}
    assert {"data", "experiment", "metrics", "model"} <= set(GROUPS)


@pytest.mark.parametrize("readme", READMES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_cited_configs_exist(readme):
    missing = [c for c in cited_configs(readme.read_text(encoding="utf-8")) if not list(ROOT.glob(c))]
    assert not missing, f"{readme.relative_to(ROOT)} cites configs that do not exist: {missing}"
