"""`/fieldlens setup`: the team's notification channel and the role allowed to change things;
`/fieldlens dashboard`: a fresh link to the team's pages."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.checks import team_of

if TYPE_CHECKING:
    from bot.client import FieldLensBot


class Setup(commands.GroupCog, group_name="fieldlens", group_description="Set FieldLens up for this team."):
    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot

    @app_commands.command(name="setup")
    @app_commands.describe(
        channel="Where FieldLens posts training news for the team",
        role="Members with this role may upload, train and delete; everyone may view",
    )
    @app_commands.guild_only()
    @app_commands.default_permissions(administrator=True)
    @app_commands.checks.has_permissions(administrator=True)
    async def setup_(
        self, interaction: discord.Interaction, channel: discord.TextChannel, role: discord.Role
    ) -> None:
        """Choose the team's channel and role (server administrators only)."""
        team = team_of(interaction)
        name = interaction.guild.name if interaction.guild else ""
        self.bot.services.teams.configure(team, channel.id, role.id, name)  # type: ignore[attr-defined]
        await interaction.response.send_message(
            f"FieldLens will post training news in {channel.mention}; members with {role.mention} "
            "may upload, train and delete.",
            ephemeral=True,
            allowed_mentions=discord.AllowedMentions.none(),
        )

    @app_commands.command(name="dashboard")
    @app_commands.guild_only()
    async def dashboard(self, interaction: discord.Interaction) -> None:
        """A fresh link to your team's pages: jobs with live charts, models, datasets."""
        team = team_of(interaction)
        bot: FieldLensBot = self.bot  # type: ignore[assignment]
        days = bot.settings.page_link_minutes / (24 * 60)
        lifetime = f"{days:g} days" if days >= 1 else f"{bot.settings.page_link_minutes} min"
        await interaction.response.send_message(
            "Your team's pages (every job with live charts and its log, every model with its downloads, "
            f"every dataset with its photos); the link works for {lifetime}, for anyone you give it to: "
            f"<{bot.page(team, '/dashboard')}>",
            ephemeral=True,
        )


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Setup(bot))
