"""`/budget show` and the operators' `/budget grant`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.checks import NotAllowed, team_of

if TYPE_CHECKING:
    from bot.client import FieldLensBot


@app_commands.guild_only()
class BudgetCog(commands.GroupCog, group_name="budget", group_description="Training minutes."):
    def __init__(self, bot: FieldLensBot) -> None:
        self.bot = bot

    @app_commands.command()
    async def show(self, interaction: discord.Interaction) -> None:
        """Minutes left for training, and the latest ledger lines behind the number."""
        team = team_of(interaction)
        b = self.bot.services.budget
        entries = b.entries(team)
        lines = [f"`{e.at:%Y-%m-%d}` {e.minutes:+g} min: {e.reason}" for e in entries[-10:]]
        operators = self.bot.settings.operators()
        embed = discord.Embed(
            title=f"{b.balance(team):g} training minutes left",
            description="\n".join([*lines, "", f"More minutes: ask {operators}."]),
            colour=discord.Colour.blurple(),
        )
        embed.set_footer(text=f"{len(entries)} ledger lines; starting a job reserves its max minutes")
        await interaction.response.send_message(embed=embed, ephemeral=True)

    @app_commands.command()
    @app_commands.describe(minutes="Minutes to add", server="Server id of the team (default: this server)")
    async def grant(
        self, interaction: discord.Interaction, minutes: app_commands.Range[int, 1, 100_000], server: str = ""
    ) -> None:
        """FieldLens operators only: give a team more training minutes."""
        if interaction.user.id not in self.bot.settings.admin_user_ids:
            raise NotAllowed(
                f"Only FieldLens operators may grant minutes. Ask {self.bot.settings.operators()}."
            )
        team = server.strip() or team_of(interaction)
        left = self.bot.services.budget.grant(team, minutes, f"by {interaction.user} in Discord")
        await interaction.response.send_message(
            f"Granted {minutes} min to team {team}; {left:g} left.", ephemeral=True
        )


async def setup(bot: FieldLensBot) -> None:
    await bot.add_cog(BudgetCog(bot))
