"""The import wall: the bot never loads TensorFlow; the edge loads neither TensorFlow nor discord; the
base (storage) loads no leaf; the trainer never loads the CLI or the bot; remote work (cluster) loads
no TensorFlow until a job runs. Test code stays on its side: no product package imports the tests or
testkit (their fakes), and the benchmarks share testkit with the tests but never import the tests."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

FORBIDDEN = {
    "storage": ("tensorflow", "keras", "discord", "trainer", "bot", "edge", "fieldlens", "cluster", "celery"),
    "bot": ("tensorflow", "keras", "trainer", "cluster", "celery"),
    "edge": ("tensorflow", "keras", "discord", "trainer", "bot", "storage", "fieldlens", "cluster"),
    "fieldlens.cli": ("tensorflow", "keras", "discord"),
    "trainer": ("discord", "bot", "fieldlens", "cluster", "celery"),
    # Remote work loads TensorFlow only inside a job's process, never when a worker or the control
    # consumer starts.
    "cluster": ("tensorflow", "keras", "discord", "bot", "fieldlens"),
}


@pytest.mark.parametrize("package", list(FORBIDDEN))
def test_package_does_not_import_forbidden_modules(package: str) -> None:
    forbidden = FORBIDDEN[package]
    code = (
        "import importlib, pkgutil, sys\n"
        f"pkg = importlib.import_module({package!r})\n"
        "for m in pkgutil.walk_packages(getattr(pkg, '__path__', []), pkg.__name__ + '.'):\n"
        "    importlib.import_module(m.name)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {forbidden!r})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"{package} imported {out.stdout.strip()}"


ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("storage", "bot", "trainer", "edge", "fieldlens", "cluster")
# Read from the source rather than from sys.modules: an import inside a function counts too (bench/bot.py
# once imported the tests' fake Discord only when it ran).
TEST_CODE = {
    **{package: ("tests", "testkit") for package in PRODUCT},
    "bench": ("tests",),
    "testkit": ("tests",),
}


def _imported(path: Path) -> set[str]:
    """The top-level packages that `path` imports anywhere in it (relative imports stay in its own)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", list(TEST_CODE))
def test_package_does_not_import_test_code(package: str) -> None:
    forbidden = set(TEST_CODE[package])
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no Python files under {package}/"
    bad = [
        f"{path.relative_to(ROOT)} imports {', '.join(sorted(names & forbidden))}"
        for path in files
        if (names := _imported(path)) & forbidden
    ]
    assert bad == [], bad
