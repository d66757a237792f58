"""Every setting and every CLI command is documented in the README."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from fieldlens.cli import cli
from storage.settings import Settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


@pytest.mark.parametrize("field", list(Settings.model_fields))
def test_every_setting_is_in_the_readme(field: str) -> None:
    assert f"`FIELDLENS_{field.upper()}`" in README


def _commands(group: click.Group, prefix: str = "fieldlens"):
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, f"{prefix} {name}")
        else:
            yield f"{prefix} {name}"


@pytest.mark.parametrize("command", list(_commands(cli)))
def test_every_cli_command_is_in_the_readme(command: str) -> None:
    assert command in README
