"""ARCHITECTURE.md's import map is the code's: every cross-folder import is declared there, and every
declared one exists (a new arrow, or one removed, changes the document in the same commit)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from .helpers import REPO

PACKAGE = REPO / "src" / "dbd_lightning"


def unit_of(parts: list[str]) -> str | None:
    """The top-level folder or module of the package a dotted path lies in (``None``: the package itself or
    a private module such as ``_env``)."""
    return parts[0] if parts and not parts[0].startswith("_") else None


def actual_arrows(package: Path = PACKAGE) -> dict[str, set[str]]:
    """``{unit: {units it imports}}`` read from every ``.py`` file's import statements (lazy ones included)."""
    arrows: dict[str, set[str]] = {}
    for path in package.rglob("*.py"):
        module = list(path.relative_to(package).with_suffix("").parts)
        source = unit_of(module)
        if source is None:
            continue
        if module[-1] == "__init__":
            module = module[:-1] + ["__init__"]  # a package's own level: relative imports start at its folder
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[list[str]] = []
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    targets.append(module[:len(module) - node.level] + (node.module.split(".") if node.module else []))
                elif node.module and node.module.startswith("dbd_lightning."):
                    targets.append(node.module.split(".")[1:])
            elif isinstance(node, ast.Import):
                targets += [a.name.split(".")[1:] for a in node.names if a.name.startswith("dbd_lightning.")]
            for target in targets:
                unit = unit_of(target)
                if unit is not None and unit != source:
                    arrows.setdefault(source, set()).add(unit)
    return arrows


def declared_arrows(text: str) -> dict[str, set[str]]:
    """The ```imports block of ARCHITECTURE.md: one ``unit -> other other ...`` line per importing unit."""
    block = re.search(r"```imports\n(.*?)```", text, flags=re.S)
    assert block, "ARCHITECTURE.md has no ```imports block"
    arrows = {}
    for line in block.group(1).splitlines():
        if line.strip():
            source, _, targets = line.partition("->")
            arrows[source.strip()] = set(targets.split())
    return arrows


def test_the_import_map_in_architecture_md_is_the_codes():
    declared = declared_arrows((REPO / "ARCHITECTURE.md").read_text())
    actual = actual_arrows()
    new = sorted(f"{a} -> {b}" for a, bs in actual.items() for b in bs - declared.get(a, set()))
    gone = sorted(f"{a} -> {b}" for a, bs in declared.items() for b in bs - actual.get(a, set()))
    assert not new, f"imports not in ARCHITECTURE.md (declare them, or import the other way): {new}"
    assert not gone, f"ARCHITECTURE.md declares imports the code no longer has: {gone}"


def test_the_reader_sees_relative_and_lazy_imports(tmp_path):
    # a hand-made package: relative (two levels), absolute, and a lazy import inside a function
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "__init__.py").write_text("from . import b\n")
    (tmp_path / "a" / "b" / "m.py").write_text("from ...c import x\n\ndef f():\n    import dbd_lightning.d.e\n")
    (tmp_path / "c.py").write_text("from .a.b import m\nfrom . import _env\n")
    assert actual_arrows(tmp_path) == {"a": {"c", "d"}, "c": {"a"}}
