"""The house rules of DESIGN.md that an import contract cannot say. The import rules themselves
(tui → actions → lab; lab and actions never import textual; tui never imports docker, asyncssh,
pyroute2, subprocess or socket) are import-linter contracts in pyproject.toml, run by dev/test;
the first test here runs them too and shows they catch a broken rule.

- Nothing outside actions/ changes the lab: the mutating docker SDK calls live in actions/ only.
- Only the runner calls an action's execute() or rollback().
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
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


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=tree, env=env, capture_output=True, text=True
    )


@pytest.mark.parametrize(
    ("package", "bad_import", "contract"),
    [
        (None, None, None),
        ("lab", "import textual", "never import textual"),
        ("lab", "from actions import audit", "Layers"),
        ("actions", "from watch import notify", "Layers"),
        ("watch", "import textual", "never import textual"),
        ("tui", "def f():\n    import subprocess", "no docker, asyncssh"),
    ],
)
def test_import_contracts_hold_and_catch_a_break(
    tmp_path: Path, package: str | None, bad_import: str | None, contract: str | None
) -> None:
    assert LINT_IMPORTS.exists(), "import-linter is in the test group (dev/venv installs it)"
    for name in ("lab", "actions", "watch", "tui"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    if package is None:  # the real tree keeps every contract
        done = lint_imports(tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "0 broken" in done.stdout
        return
    assert bad_import is not None and contract is not None
    (tmp_path / package / "zz_broken_rule.py").write_text(bad_import + "\n")
    done = lint_imports(tmp_path)
    assert done.returncode != 0, done.stdout
    broken = [ln for ln in done.stdout.splitlines() if ln.rstrip().endswith("BROKEN")]
    assert broken and contract in " ".join(done.stdout.split()), done.stdout
    assert f"{package}.zz_broken_rule" in done.stdout


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
    for package in ("lab", "actions", "watch", "tui"):
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


def test_no_import_circles() -> None:
    """No module imports, directly or through others, a module that imports it back (imports
    inside functions count; `if TYPE_CHECKING:` ones do not — they never run)."""
    import grimp

    graph = grimp.build_graph("lab", "actions", "tui", "watch", exclude_type_checking_imports=True)
    circles = sorted(
        {
            tuple(sorted((module, imported)))
            for module in graph.modules
            for imported in graph.find_modules_directly_imported_by(module)
            if graph.chain_exists(importer=imported, imported=module)
        }
    )
    assert circles == [], f"import circles: {circles}"


def test_the_circle_check_sees_a_circle(tmp_path: Path) -> None:
    import grimp

    pkg = tmp_path / "circled"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from circled import b\n")
    (pkg / "b.py").write_text("from circled import a\n")
    sys.path.insert(0, str(tmp_path))
    try:
        graph = grimp.build_graph("circled", cache_dir=None)
    finally:
        sys.path.remove(str(tmp_path))
    assert graph.chain_exists(importer="circled.b", imported="circled.a")
    assert graph.chain_exists(importer="circled.a", imported="circled.b")
