"""`/model promote|compare` and `/model token create|list|revoke`: which model the robots get, the
tokens they get it with, and how two models compare. A part of the `/model` group (bot/cogs/model.py
mixes it into ModelCog: one group, one cog), kept apart from the commands that inspect a model.

Promoting and making or revoking tokens need the team role, like uploading; everyone may look.
A token is shown once, ephemerally, to whoever made it; only its hash is stored.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.checks import require_editor, team_of
from bot.shared import dataset_names, model_ids
from bot.work import in_thread
from storage.edge_tokens import token_name
from storage.errors import NotFound
from storage.model_compare import Comparison, compare_models
from storage.services import Services

if TYPE_CHECKING:
    from bot.client import FieldLensBot


def _compare(services: Services, team: str, a: int, b: int, dataset: str | None) -> Comparison:
    from edge.detector import TFLiteDetector

    def open_detector(path: Path) -> TFLiteDetector:
        return TFLiteDetector(path, threshold=0.0)  # every detection: mAP sweeps the scores itself

    first, second = services.models.get(team, a), services.models.get(team, b)
    return compare_models(services, team, first, second, open_detector, dataset)


async def token_names(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    if interaction.guild_id is None:
        return []
    bot: FieldLensBot = interaction.client  # type: ignore[assignment]
    names = [t.name for t in bot.services.models.tokens.list_team(str(interaction.guild_id))]
    return [app_commands.Choice(name=n, value=n) for n in names if current.lower() in n.lower()][:25]


def robot_line(bot: FieldLensBot, team: str) -> str:
    """Which model `fieldlens-edge pull` gets now, in a sentence."""
    models = bot.services.models
    promoted = models.promoted(team)
    if promoted is not None:
        return f"Robots pull model {promoted.id} ({promoted.name}): the team promoted it."
    try:
        newest = models.servable(team)
    except NotFound:
        return "Robots have no model to pull yet: none has passed the int8 check."
    return (
        f"Robots pull model {newest.id} ({newest.name}), the newest that passed the int8 check, until "
        "the team promotes one with `/model promote`."
    )


class RobotCommands(commands.Cog):
    """The commands of ModelCog that put a model on the robots (never added as a cog of its own: see
    the module docstring)."""

    bot: FieldLensBot

    @app_commands.command()
    @app_commands.describe(model="The model your robots should pull")
    @app_commands.autocomplete(model=model_ids)
    async def promote(self, interaction: discord.Interaction, model: int) -> None:
        """Make a model the one your robots pull, whatever is trained after it."""
        team = team_of(interaction)
        require_editor(interaction, self.bot.services.teams.get(team))
        chosen = self.bot.services.models.promote(team, model, by_user=str(interaction.user.id))
        await interaction.response.send_message(
            f"Model {chosen.id} ({chosen.name}) is now the team's robot model: `fieldlens-edge pull` gets "
            "it, and keeps getting it when newer models are trained, until another is promoted. "
            f"Its page: <{self.bot.page(team, f'/models/{chosen.id}')}>",
            allowed_mentions=discord.AllowedMentions.none(),
        )

    @app_commands.command()
    @app_commands.describe(
        a="The first model (its test images, else its validation images, are used)",
        b="The model to compare it with",
        dataset="Compare on this dataset's test (else validation) images instead",
    )
    @app_commands.autocomplete(a=model_ids, b=model_ids)
    @app_commands.autocomplete(dataset=dataset_names)
    async def compare(
        self, interaction: discord.Interaction, a: int, b: int, dataset: str | None = None
    ) -> None:
        """Two models on the same images: mAP, AP per label, thresholds, size and latency."""
        team = team_of(interaction)
        self.bot.services.models.get(team, a)  # an unknown id is answered before deferring
        self.bot.services.models.get(team, b)
        await interaction.response.defer(thinking=True)
        result = await in_thread(self.bot.settings, _compare, team, a, b, dataset)
        pages = " · ".join(f"model {m}: <{self.bot.page(team, f'/models/{m}')}>" for m in (a, b))
        await interaction.followup.send(f"{result.heading()}\n```\n{result.table()}\n```\n{pages}")

    token = app_commands.Group(
        name="token", description="Edge tokens: what your robots pull the team's model with."
    )

    @token.command(name="create")
    @app_commands.describe(name="The robot it is for, like competition-bot")
    async def token_create(self, interaction: discord.Interaction, name: str) -> None:
        """Make a token for one robot: shown once, only to you, with the command to run on the robot."""
        team = team_of(interaction)
        require_editor(interaction, self.bot.services.teams.get(team))
        value = self.bot.services.models.tokens.create(team, name, created_by=str(interaction.user.id))
        named = token_name(name)
        server = self.bot.settings.public_url
        await interaction.response.send_message(
            f"Edge token **{named}**. It is shown this once: put it on the robot now.\n"
            f"```\nfieldlens-edge pull --server {server} --token {value} --dest models\n```\n"
            f"{robot_line(self.bot, team)} `/model token revoke name:{named}` stops it at once.",
            ephemeral=True,
        )

    @token.command(name="list")
    async def token_list(self, interaction: discord.Interaction) -> None:
        """The team's edge tokens: their names, who made them, and when each last pulled a model."""
        team = team_of(interaction)
        lines = [
            f"**{t.name}**: made <t:{int(t.created_at.timestamp())}:R>"
            + (f" by <@{t.created_by}>" if t.created_by.isdigit() else "")
            + (f", last pull <t:{int(t.last_pull_at.timestamp())}:R>" if t.last_pull_at else ", never pulled")
            for t in self.bot.services.models.tokens.list_team(team)
        ]
        text = "\n".join(lines) if lines else "No edge tokens yet. Make one with `/model token create name:`."
        await interaction.response.send_message(
            f"{text}\n{robot_line(self.bot, team)}"[:1900],
            ephemeral=True,
            allowed_mentions=discord.AllowedMentions.none(),
        )

    @token.command(name="revoke")
    @app_commands.describe(name="The token to stop")
    @app_commands.autocomplete(name=token_names)
    async def token_revoke(self, interaction: discord.Interaction, name: str) -> None:
        """Stop a token at once: robots using it are refused from their next request."""
        team = team_of(interaction)
        require_editor(interaction, self.bot.services.teams.get(team))
        revoked = self.bot.services.models.tokens.revoke(team, name)
        await interaction.response.send_message(
            f"Edge token **{revoked.name}** is revoked: robots using it are refused from now on.",
            ephemeral=True,
        )
