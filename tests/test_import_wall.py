"""The import wall: the bot never loads TensorFlow; the edge loads neither TensorFlow nor discord; the
base (storage) loads no leaf; the trainer never loads the CLI or the bot; remote work (cluster) loads
no TensorFlow until a job runs."""

from __future__ import annotations

import subprocess
import sys

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
