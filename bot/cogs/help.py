"""`/help` (every command by task, on one screen) and the first message in a server that adds the bot."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from storage.model_folder import INT8, LABELS

if TYPE_CHECKING:
    from bot.client import FieldLensBot

log = logging.getLogger(__name__)

WELCOME = (
    "Hi, I'm **FieldLens**: I train object detectors for your robot from labelled photos (a Pascal VOC "
    "zip, as labelImg, CVAT or Roboflow export it).\n"
    "**First**, a server administrator runs `/fieldlens setup channel: role:` to choose where I post "
    "training news and which role may upload and train.\n"
    "**Then** `/dataset upload` your zip and `/train start datasets:` it. `/help` lists every command."
)

# Each task on one line or two, so the whole answer fits one screen.
TASKS = [
    ("1. Set up (administrators)", "`/fieldlens setup channel: role:`: where news goes, who may train"),
    (
        "2. Get data in",
        "`/dataset upload name: file:` (or `url:` for big zips) · `/dataset list` · `/dataset info name:` "
        "· `/dataset preview name:` · `/dataset combine` · `/dataset delete`",
    ),
    (
        "3. Train",
        "`/train start datasets:` shows the plan, then press Start · `/train status` · `/train list` · "
        "`/train stop job:` · `/train retry job:` · `/train continue model:` · `/budget show`",
    ),
    ("4. Test", "`/model list` · `/model info model:` · `/model test model: image:` (a robot's photo)"),
    (
        "5. Put it on the robot",
        f"`/model download model:` gives `{INT8}` and `{LABELS}`: copy both to the robot "
        "(FTC, Limelight or a Raspberry Pi; the README says where)",
    ),
]


def help_embed(operators: str) -> discord.Embed:
    e = discord.Embed(
        title="FieldLens: teach your robot to see",
        description="A job trains; what it makes is a model. They have their own numbers: "
        "job 7 may make model 3.",
        colour=discord.Colour.blurple(),
    )
    for name, value in TASKS:
        e.add_field(name=name, value=value, inline=False)
    e.set_footer(text=f"Stuck? Every error says what to do next; otherwise ask {operators}."[:2048])
    return e


def welcome_channel(guild: discord.Guild) -> discord.TextChannel | None:
    """The server's system channel, else the first text channel the bot may write in."""
    me = guild.me
    for channel in [guild.system_channel, *guild.text_channels]:
        if channel is not None and (me is None or channel.permissions_for(me).send_messages):
            return channel
    return None


class Help(commands.Cog):
    def __init__(self, bot: FieldLensBot) -> None:
        self.bot = bot

    @app_commands.command(name="help")
    async def help_(self, interaction: discord.Interaction) -> None:
        """What FieldLens does and every command, by task."""
        operators = self.bot.settings.operators(mentions=False)
        await interaction.response.send_message(embed=help_embed(operators), ephemeral=True)

    @commands.Cog.listener()
    async def on_guild_join(self, guild: discord.Guild) -> None:
        channel = welcome_channel(guild)
        if channel is None:
            log.info("joined %s but may write in none of its channels", guild.id)
            return
        try:
            await channel.send(WELCOME, allowed_mentions=discord.AllowedMentions.none())
        except discord.HTTPException as e:
            log.info("could not greet server %s (%s)", guild.id, e.status)


async def setup(bot: FieldLensBot) -> None:
    await bot.add_cog(Help(bot))
