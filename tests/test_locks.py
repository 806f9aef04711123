"""The locks install what the code imports, and agree with each other.

``requirements/run.txt`` is all that ``scripts/serve`` installs, so the
server and the newcomer's demo client must import nothing outside it;
``requirements/dev.txt`` pins every package of the run set at the same
version, so tests run against what is served.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^ \\]+)")
# Imported lazily, for an option that says it needs the dev set.
OPTIONAL = {"matplotlib"}  # `giftstream loadtest --plot`


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(lock: str) -> dict[str, str]:
    text = (REPO_ROOT / "requirements" / lock).read_text()
    return {canonical(m[1]): m[2] for line in text.splitlines() if (m := PIN.match(line))}


def top_level_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def third_party(names: set[str]) -> set[str]:
    return {n for n in names if n not in sys.stdlib_module_names and n not in {"server", "tests"}}


def distributions_of(module: str) -> set[str]:
    return {canonical(d) for d in packages_distributions().get(module, [])}


def test_every_pin_has_a_hash() -> None:
    for lock in ("run.txt", "dev.txt"):
        blocks = re.split(r"\n(?=[A-Za-z0-9])", (REPO_ROOT / "requirements" / lock).read_text())
        pinned = [block for block in blocks if PIN.match(block)]
        assert pinned, lock
        unhashed = [block.split()[0] for block in pinned if "--hash=sha256:" not in block]
        assert unhashed == [], lock


def test_the_dev_set_pins_the_run_set_at_the_same_versions() -> None:
    run, dev = pins("run.txt"), pins("dev.txt")
    assert {name: dev.get(name) for name in run} == run


def test_every_declared_dependency_is_locked() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    requirement_name = re.compile(r"^[A-Za-z0-9_.-]+")

    def names(requirements: list[str]) -> set[str]:
        return {canonical(m[0]) for r in requirements if (m := requirement_name.match(r))}

    assert names(project["dependencies"]) <= set(pins("run.txt"))
    assert names(project["optional-dependencies"]["dev"]) <= set(pins("dev.txt"))


def test_the_server_and_the_demo_client_import_only_the_run_set() -> None:
    run = set(pins("run.txt"))
    sources = [*sorted((REPO_ROOT / "server").rglob("*.py")), REPO_ROOT / "scripts/demo_client.py"]
    outside: list[str] = []
    for path in sources:
        for module in sorted(third_party(top_level_imports(path)) - OPTIONAL):
            if not distributions_of(module) & run:
                outside.append(f"{path.relative_to(REPO_ROOT)} imports {module}")
    assert outside == []


def test_the_import_check_sees_a_dev_only_module(tmp_path: Path) -> None:
    # The check above can fail: pytest is installed here, but only by the dev set.
    script = tmp_path / "uses_pytest.py"
    script.write_text("import pytest\nimport json\n")
    assert third_party(top_level_imports(script)) == {"pytest"}
    assert "pytest" in distributions_of("pytest")
    assert not distributions_of("pytest") & set(pins("run.txt"))
