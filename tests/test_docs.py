"""Every setting, every CLI command and every slash command is documented in the README."""

from __future__ import annotations

import importlib
from pathlib import Path

import click
import pytest
from discord.ext import commands

from bot.cogs import EXTENSIONS
from fieldlens.cli import cli, subcommands
from storage.settings import Settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


@pytest.mark.parametrize("field", list(Settings.model_fields))
def test_every_setting_is_in_the_readme(field: str) -> None:
    assert f"`FIELDLENS_{field.upper()}`" in README


def _commands(group: click.Group, prefix: str = "fieldlens"):
    for name, cmd in subcommands(group).items():
        if cmd.hidden:  # an old name kept for scripts
            continue
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, f"{prefix} {name}")
        else:
            yield f"{prefix} {name}"


@pytest.mark.parametrize("command", list(_commands(cli)))
def test_every_cli_command_is_in_the_readme(command: str) -> None:
    assert command in README


def _slash_commands():
    for extension in EXTENSIONS:
        module = importlib.import_module(extension)
        for cog in vars(module).values():
            if isinstance(cog, type) and issubclass(cog, commands.Cog) and cog.__module__ == extension:
                group = (
                    getattr(cog, "__cog_group_name__", None) if issubclass(cog, commands.GroupCog) else None
                )
                for command in cog.__cog_app_commands__:
                    yield f"/{group} {command.name}" if group else f"/{command.name}"


@pytest.mark.parametrize("command", list(_slash_commands()))
def test_every_slash_command_is_in_the_readme_table(command: str) -> None:
    assert f"| `{command}" in README
