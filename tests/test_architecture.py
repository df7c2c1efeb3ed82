"""The package's plan: subpackages on floors, each importing only the floors below it.

Read from the code's own imports (ast, every import, also those deferred inside functions), so the plan in
dcgan_lib/__init__.py cannot drift from the code: an import circle between subpackages, an import between two
subpackages of one floor, or one that runs back up fails here, naming the file, the line and the import.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import dcgan_lib

PACKAGE = Path(dcgan_lib.__file__).parent

# top floor first; a subpackage may import only subpackages on a lower floor (never one beside it)
FLOORS = (
    ("cli",),
    ("course",),
    ("bench",),
    ("models",),
    ("measure", "dedup"),
    ("gan",),
    ("figures",),
    ("data", "records"),
    ("config",),
)
FLOOR = {name: len(FLOORS) - i for i, names in enumerate(FLOORS) for name in names}  # ground floor = 1


def imported_modules(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, dotted module) of every import in a file of the package at `root`, relative ones resolved."""
    here = list(path.relative_to(root.parent).with_suffix("").parts)  # a package's own is [..., "__init__"]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(here[:-node.level] + ([base] if base else []))
            # `from pkg import name`: name may be a module; its first part past the package decides the floor
            out += [(node.lineno, f"{base}.{alias.name}" if base == root.name else base) for alias in node.names]
    return out


def subpackage_of(module: str, root_name: str) -> str | None:
    """The subpackage a dotted module of the package lies in (None: outside the package, or the package itself)."""
    parts = module.split(".")
    return parts[1] if parts[0] == root_name and len(parts) > 1 else None


def violations(root: Path, floor: dict[str, int]) -> list[str]:
    """Every import from one subpackage into another that is not on a lower floor, as 'file:line a -> b'."""
    found = []
    for path in sorted(root.rglob("*.py")):
        own = subpackage_of(".".join(path.relative_to(root.parent).with_suffix("").parts), root.name)
        if own not in floor:
            continue  # the package's own __init__ and __main__ stand above every floor
        for line, module in imported_modules(path, root):
            other = subpackage_of(module, root.name)
            if other is not None and other != own and floor.get(other, 0) >= floor[own]:
                found.append(f"{path.relative_to(root.parent)}:{line} {own} (floor {floor[own]}) -> {other} "
                             f"(floor {floor.get(other, '?')})")
    return found


def circles(root: Path) -> list[list[str]]:
    """Import circles between subpackages (each as a path of subpackage names), from the same imports."""
    edges: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        own = subpackage_of(".".join(path.relative_to(root.parent).with_suffix("").parts), root.name)
        for _, module in imported_modules(path, root):
            other = subpackage_of(module, root.name)
            if own and other and other != own:
                edges.setdefault(own, set()).add(other)
    found, state = [], {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                found.append(trail[trail.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = "done"

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    return found


def test_every_subpackage_has_a_floor_and_a_docstring():
    subpackages = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists())
    assert sorted(FLOOR) == subpackages, "place every subpackage on a floor in FLOORS (and remove gone ones)"
    for name in subpackages:
        doc = ast.get_docstring(ast.parse((PACKAGE / name / "__init__.py").read_text()))
        assert doc and len(doc) > 80, f"dcgan_lib/{name}/__init__.py: say what it owns and what it may import"
        assert name == "cli" or name in dcgan_lib.__doc__, f"list `{name}` in dcgan_lib/__init__.py's plan"


def test_top_level_holds_only_the_subpackages():
    loose = sorted(p.name for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py"))
    assert not loose, f"modules at dcgan_lib's top level: {loose}; give each a home in a subpackage"


def test_no_import_runs_back_up_or_sideways():
    found = violations(PACKAGE, FLOOR)
    assert not found, "imports that run back up or between subpackages of one floor:\n" + "\n".join(found)


def test_no_import_circle_between_subpackages():
    assert circles(PACKAGE) == []


@pytest.fixture
def toy(tmp_path):
    """A package whose `low` imports `high` (inside a function, as a deferred import would)."""
    root = tmp_path / "toy"
    for name, text in {"__init__.py": "", "high/__init__.py": "", "low/__init__.py": "",
                       "high/a.py": "from toy.low import b\n",
                       "low/b.py": "def f():\n    from toy.high import a\n    return a\n"}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_the_checks_catch_a_deferred_upward_import_and_its_circle(toy):
    assert violations(toy, {"high": 2, "low": 1}) == ["toy/low/b.py:2 low (floor 1) -> high (floor 2)"]
    assert violations(toy, {"high": 1, "low": 2}) == ["toy/high/a.py:1 high (floor 1) -> low (floor 2)"]
    assert circles(toy) == [["high", "low", "high"]]
