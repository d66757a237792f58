"""The one error handler for every slash command and every button (views and the Stop button hand
their errors here through `bot.ui.report_error`).

    UserError (anything the user can fix)   -> the sentence itself, ephemeral
    a check failed (DMs, missing permission) -> what is needed, ephemeral
    anything else                            -> "Something went wrong (ref a1b2c3). Tell <who runs
                                                this FieldLens> this ref.", ephemeral; the traceback
                                                goes to the log under the same ref
Whether the interaction was already answered (deferred, say), the reply is a follow-up then.
"""

from __future__ import annotations

import logging
import secrets

import discord
from discord import app_commands
from discord.ext import commands

from storage.errors import UserError

log = logging.getLogger(__name__)


async def reply(interaction: discord.Interaction, text: str) -> None:
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=True)
    else:
        await interaction.response.send_message(text, ephemeral=True)


def _what(interaction: discord.Interaction) -> str:
    """The command or button that failed, for the log."""
    if interaction.command is not None:
        return f"command {interaction.command.qualified_name}"
    data: dict[str, object] = dict(interaction.data or {})
    return f"component {data.get('custom_id', '?')}"


async def on_app_command_error(interaction: discord.Interaction, error: Exception) -> None:
    original = getattr(error, "original", error)
    if isinstance(original, UserError):
        text = str(original)
    elif isinstance(error, app_commands.NoPrivateMessage):
        text = "FieldLens works inside your team's Discord server. Use the commands there."
    elif isinstance(error, app_commands.MissingPermissions):
        text = "You need the Administrator permission in this server to do this."
    elif isinstance(error, app_commands.CheckFailure):
        text = "You are not allowed to do this here."
    elif isinstance(error, app_commands.TransformerError):
        text = f"{error.value!r} is not a valid value for this option."
    else:
        ref = secrets.token_hex(3)
        log.error("%s failed (ref %s)", _what(interaction), ref, exc_info=original)
        operators = interaction.client.settings.operators()  # type: ignore[attr-defined]
        text = f"Something went wrong (ref {ref}). Tell {operators} this ref."
    try:
        await reply(interaction, text)
    except discord.HTTPException:
        log.warning("could not tell the user about an error: %s", text)


class Errors(commands.Cog):
    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot
        bot.tree.on_error = on_app_command_error  # type: ignore[method-assign]


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Errors(bot))
