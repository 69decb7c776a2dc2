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


LAYERS = (  # the README's "Layout", top to bottom: a part imports only parts on its floor or below
    ("app.entry",),
    ("app.console",),
    ("app.whatif",),
    ("app.api", "app.export"),
    ("app.operator", "app.client", "app.security"),
    ("app.store",),
    ("app.exchange", "app.tariffs"),
    ("app.config", "app.slots"),
)


def floor_of(module: str) -> int | None:
    return next((i for i, parts in enumerate(LAYERS) if module.startswith(parts)), None)


def runtime_imports(path: Path) -> set[str]:
    """The modules ``path`` imports when it runs: ``if TYPE_CHECKING:`` blocks (hints) left out."""
    tree = ast.parse(path.read_text(), str(path))
    hints = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING"
        for inner in ast.walk(node)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in hints:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


APP_MODULES = sorted(p for p in (ROOT / "app").rglob("*.py") if p.parent != ROOT / "app")


@pytest.mark.parametrize("path", APP_MODULES, ids=lambda p: str(p.relative_to(ROOT / "app")))
def test_a_part_imports_no_part_drawn_above_it(path: Path):
    module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    mine = floor_of(module)
    above = sorted(m for m in runtime_imports(path) if (f := floor_of(m)) is not None and f < mine)
    assert not above, f"{path.relative_to(ROOT)} (floor {mine}) imports {above} from above it"


@pytest.mark.parametrize("path", sorted((ROOT / "app" / "console").rglob("*.py")), ids=lambda p: p.name)
def test_the_console_reads_through_the_operator_store_and_the_client_only(path: Path):
    """No page or component runs the exchange core or reads the exchange's store: the slot
    statistics' table (definitions: names, labels, units), the scenario file's type and the
    notifications (a request waiting on another's reading wakes on one) are all it uses of them."""
    allowed = ("app.exchange.stat_table", "app.exchange.scenario", "app.store.notify")
    wrong = sorted(
        m
        for m in runtime_imports(path)
        if m.startswith(("app.exchange", "app.store")) and not m.startswith(allowed)
    )
    assert not wrong, f"{path.relative_to(ROOT)} imports {wrong}"
