"""The house rules of DESIGN.md, enforced on the source (an AST walk, so lazy imports count too).

- tui/ never imports docker, asyncssh, pyroute2, subprocess or socket: it reads the store and calls
  the runner.
- lab/ and actions/ never import textual.
- Nothing outside actions/ changes the lab: the mutating docker SDK calls live in actions/ only.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {
    "tui": {"docker", "asyncssh", "pyroute2", "subprocess", "socket"},
    "lab": {"textual"},
    "actions": {"textual"},
}
# Container-changing SDK methods: only action families may call them.
MUTATING_CALLS = {
    "restart",
    "stop",
    "kill",
    "remove",
    "pause",
    "unpause",
    "exec_run",
    "put_archive",
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", None) == "__import__"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            found.add(str(node.args[0].value).split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layer_imports(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"{package}/ has no Python files"
    offenders = {
        str(f.relative_to(ROOT)): sorted(imported_modules(f) & FORBIDDEN[package]) for f in files
    }
    offenders = {f: mods for f, mods in offenders.items() if mods}
    assert not offenders, f"layer rule broken: {offenders}"


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    import subprocess\n    from docker import errors\n")
    assert {"subprocess", "docker"} <= imported_modules(bad)


def test_lab_never_mutates_containers() -> None:
    offenders = []
    for f in sorted((ROOT / "lab").rglob("*.py")):
        tree = ast.parse(f.read_text())
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in MUTATING_CALLS
                and "container" in ast.unparse(node.func.value).lower()
            ):
                offenders.append(f"{f.relative_to(ROOT)}:{node.lineno} {ast.unparse(node)[:60]}")
    assert not offenders, f"lab/ changes containers outside the runner: {offenders}"


def test_only_the_runner_executes_actions() -> None:
    """An action's execute()/rollback() run only inside actions/runner.py (after policy, confirm,
    lock and the audited intent), so no pane, command or reader can change the lab on its own."""
    offenders = []
    for package in ("lab", "actions", "tui"):
        for f in sorted((ROOT / package).rglob("*.py")):
            if f == ROOT / "actions" / "runner.py":
                continue
            for node in ast.walk(ast.parse(f.read_text())):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("execute", "rollback")
                ):
                    offenders.append(f"{f.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, f"actions executed outside the runner: {offenders}"
