"""Imports go one way: the store may use the exchange core's types; the core uses no other part."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from app.config import ROOT

OUTSIDE_THE_CORE = (
    "app.store",
    "app.api",
    "app.operator",
    "app.console",
    "app.entry",
    "app.whatif",
    "app.client",
)


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", sorted((ROOT / "app" / "exchange").glob("*.py")), ids=lambda p: p.name)
def test_the_exchange_core_imports_no_other_part(path: Path):
    wrong = sorted(m for m in imported_modules(path) if m.startswith(OUTSIDE_THE_CORE))
    assert not wrong, f"{path.relative_to(ROOT)} imports {wrong}"
