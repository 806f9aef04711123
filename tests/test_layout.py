"""The package's layout holds: imports point one way, and the core stays pure.

Each module of ``server/`` sits in a layer; a module may import its own
layer and the layers below it, never one above. The README's map of the
code draws the same order.
"""

from __future__ import annotations

import ast
from pathlib import Path

SERVER = Path(__file__).resolve().parent.parent / "server"

# Lowest first. A module's layer is its subpackage's, or its own name's at
# the top of the package.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"settings", "errors", "logs", "metrics", "redaction"}),
    frozenset({"core"}),
    # The protocol's client side: it needs the core's constants and nothing above.
    frozenset({"client"}),
    frozenset({"tuning", "ops"}),
    frozenset({"store"}),
    frozenset({"rooms"}),
    frozenset({"money", "access"}),
    frozenset({"services", "demo"}),
    frozenset({"api"}),
    frozenset({"app"}),
    frozenset({"cli", "commands", "__main__", "loadtest"}),
)
# The pure core runs in any process, even one with no event loop or Redis.
IMPURE_FOR_CORE = {"asyncio", "redis", "starlette", "uvicorn", "websockets"}


def layer_of(dotted: str) -> int:
    """The layer of ``server.x...``, by its first name below ``server``."""
    first = dotted.split(".")[1]
    for level, names in enumerate(LAYERS):
        if first in names:
            return level
    raise AssertionError(f"{dotted} is in no layer of tests/test_layout.py")


def imported_modules(path: Path) -> list[str]:
    """Every module an import statement names, anywhere in the file."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
            # ``from server import x`` imports the module server.x.
            if node.module == "server":
                found += [f"server.{alias.name}" for alias in node.names]
    return found


def module_name(path: Path) -> str:
    parts = path.relative_to(SERVER.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> list[Path]:
    return sorted(p for p in SERVER.rglob("*.py") if p != SERVER / "__init__.py")


def test_every_import_points_to_the_same_layer_or_a_lower_one() -> None:
    upward: list[str] = []
    for path in modules():
        name = module_name(path)
        level = layer_of(name)
        for target in imported_modules(path):
            if target.startswith("server.") and layer_of(target) > level:
                upward.append(f"{name} imports {target}")
    assert upward == []


def test_the_core_imports_no_io() -> None:
    impure = [
        f"{module_name(path)} imports {target}"
        for path in sorted((SERVER / "core").glob("*.py"))
        for target in imported_modules(path)
        if target.split(".")[0] in IMPURE_FOR_CORE
    ]
    assert impure == []


def test_a_checker_that_can_fail_finds_an_upward_import(tmp_path: Path) -> None:
    # The checker itself: a core module importing the money layer is caught.
    bad = tmp_path / "bad.py"
    bad.write_text("from server.money.wallet import Wallets\nimport asyncio\n")
    targets = imported_modules(bad)
    assert targets == ["server.money.wallet", "asyncio"]
    assert layer_of("server.money.wallet") > layer_of("server.core.catalog")


def test_every_subpackage_says_what_it_holds() -> None:
    for package in sorted(p for p in SERVER.iterdir() if (p / "__init__.py").exists()):
        docstring = ast.get_docstring(ast.parse((package / "__init__.py").read_text()))
        assert docstring, f"server/{package.name}/__init__.py has no docstring"
