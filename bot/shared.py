"""What more than one cog (or a view) uses: autocomplete for dataset, job and model options, and the
stop action behind both `/train stop` and the Stop button. Cogs import this; never each other."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.checks import require_editor, team_of
from storage.domain import JobState

if TYPE_CHECKING:
    from bot.client import FieldLensBot


async def dataset_names(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    if interaction.guild_id is None:
        return []
    bot: FieldLensBot = interaction.client  # type: ignore[assignment]
    names = [d.name for d in bot.services.datasets.list_team(str(interaction.guild_id))]
    return [app_commands.Choice(name=n, value=n) for n in names if current.lower() in n.lower()][:25]


async def dataset_list(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    """Complete the last name of a comma-separated list, keeping the names before it."""
    if interaction.guild_id is None:
        return []
    bot: FieldLensBot = interaction.client  # type: ignore[assignment]
    *before, last = current.split(",")
    kept = [n.strip() for n in before if n.strip()]
    taken = {n.lower() for n in kept}
    choices = []
    for d in bot.services.datasets.list_team(str(interaction.guild_id)):
        if d.name.lower() in taken or last.strip().lower() not in d.name.lower():
            continue
        value = ", ".join([*kept, d.name])
        if len(value) <= 100:  # Discord's limit for a choice
            choices.append(app_commands.Choice(name=value, value=value))
    return choices[:25]


def _matches(current: str, number: int, name: str) -> bool:
    """An id option accepts the number ("7", "job 7") or any part of the name a team gave."""
    words = current.lower().replace("job", "").replace("model", "").strip()
    return not words or words in str(number) or current.lower().strip() in name.lower()


async def job_ids(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[int]]:
    if interaction.guild_id is None:
        return []
    bot: FieldLensBot = interaction.client  # type: ignore[assignment]
    jobs = bot.services.jobs.list_team(str(interaction.guild_id), limit=100)
    return [
        app_commands.Choice(name=f"job {j.id} · {j.state} · {j.description}".strip(" ·")[:100], value=j.id)
        for j in jobs
        if _matches(current, j.id, j.description)
    ][:25]


async def model_ids(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[int]]:
    if interaction.guild_id is None:
        return []
    bot: FieldLensBot = interaction.client  # type: ignore[assignment]
    models = bot.services.models.list_team(str(interaction.guild_id))[::-1]
    return [
        app_commands.Choice(name=f"model {m.id} · {m.name}"[:100], value=m.id)
        for m in models
        if _matches(current, m.id, m.name)
    ][:25]


async def stop_job(interaction: discord.Interaction, job_id: int) -> None:
    """/train stop and the Stop button on a progress message."""
    bot: FieldLensBot = interaction.client  # type: ignore[assignment]
    team = team_of(interaction)
    require_editor(interaction, bot.services.teams.get(team))
    job = bot.services.jobs.request_stop(team, job_id)
    text = (
        f"Job {job.id} was canceled before it started; its minutes are back."
        if job.state == JobState.CANCELED
        else f"Stopping job {job.id} after the current step; it keeps its last checkpoint and delivers "
        f"that model. `/train retry job:{job.id}` can finish the remaining steps later."
    )
    page = bot.page(team, f"/jobs/{job.id}")
    await interaction.response.send_message(f"{text}\nIts page: <{page}>", ephemeral=True)
