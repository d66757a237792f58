"""`/train start|stop|status|list|continue`: jobs for the worker, with a live progress message."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.checks import require_editor, team_of
from bot.cogs.dataset import dataset_names
from bot.ui import Confirm, job_embed, plan_embed, stop_view
from storage.domain import JobState
from storage.errors import OutOfRange
from storage.plan import MODELS

if TYPE_CHECKING:
    from bot.client import FieldLensBot

MODEL_CHOICES = [app_commands.Choice(name=m, value=m) for m in MODELS]


async def job_ids(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[int]]:
    if interaction.guild_id is None:
        return []
    bot: FieldLensBot = interaction.client  # type: ignore[assignment]
    jobs = bot.services.jobs.list_team(str(interaction.guild_id), limit=25)
    return [
        app_commands.Choice(name=f"#{j.id} {j.state} {j.description}"[:100], value=j.id)
        for j in jobs
        if current in str(j.id)
    ]


async def model_ids(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[int]]:
    if interaction.guild_id is None:
        return []
    bot: FieldLensBot = interaction.client  # type: ignore[assignment]
    models = bot.services.models.list_team(str(interaction.guild_id))[::-1][:25]
    return [
        app_commands.Choice(name=f"#{m.id} {m.name}"[:100], value=m.id)
        for m in models
        if current in str(m.id)
    ]


@app_commands.guild_only()
class Train(commands.GroupCog, group_name="train", group_description="Train detectors on your datasets."):
    def __init__(self, bot: FieldLensBot) -> None:
        self.bot = bot

    async def _offer(
        self,
        interaction: discord.Interaction,
        names: list[str],
        model: str,
        steps: int,
        max_minutes: int,
        description: str,
        from_model: int | None = None,
    ) -> None:
        """Show the plan with Start and Cancel; Start queues the job and makes the message its progress."""
        team = team_of(interaction)
        s = self.bot.services
        require_editor(interaction, s.teams.get(team))
        config = dict(self.bot.settings.job_defaults)
        batch = int(config.pop("batch_size", 32))
        plan, _, _ = s.jobs.plan(
            team, names, model, steps, batch, max_minutes, int(config.get("checkpoint_every", 100))
        )
        left = s.budget.balance(team)

        async def start(button: discord.Interaction) -> None:
            job = s.jobs.create(
                team, names, model, steps, batch, max_minutes, description, from_model, config
            )
            if job.state == JobState.TRY_AGAIN_LATER:
                reason = s.jobs.events(job.id)[-1].data.get("reason", "")
                await button.response.edit_message(
                    content=f"Job #{job.id}: TRY_AGAIN_LATER. {reason}", embed=None, view=None
                )
                return
            await button.response.edit_message(content=None, embed=job_embed(job, {}), view=stop_view(job))
            s.notices.add(
                job.id,
                button.channel_id,
                button.message.id if button.message else None,
                button.application_id,
                button.token,
                datetime.now(UTC),
            )

        await interaction.response.send_message(
            embed=plan_embed(names, model, plan, max_minutes, left),
            view=Confirm(interaction.user.id, "Start", start),
        )

    @app_commands.command()
    @app_commands.describe(
        datasets="Datasets to train on (identical labels), separated by commas",
        model="Detector architecture",
        steps="Training steps (checkpoints every 100)",
        max_minutes="Most training minutes, reserved from the team's budget; unused ones come back",
        description="A note to recognise the job by",
    )
    @app_commands.choices(model=MODEL_CHOICES)
    @app_commands.autocomplete(datasets=dataset_names)
    async def start(
        self,
        interaction: discord.Interaction,
        datasets: str,
        model: str = MODELS[0],
        steps: app_commands.Range[int, 1, 200_000] = 1000,
        max_minutes: app_commands.Range[int, 1, 1440] = 60,
        description: str = "",
    ) -> None:
        """Plan a training job: see batch size, epochs, time and budget, then press Start."""
        names = [n.strip() for n in datasets.split(",") if n.strip()]
        await self._offer(interaction, names, model, steps, max_minutes, description)

    @app_commands.command(name="continue")
    @app_commands.describe(
        model="The model to train more",
        steps="More training steps",
        max_minutes="Most training minutes, reserved from the budget",
        datasets="Datasets (default: the ones the model was trained on), separated by commas",
    )
    @app_commands.autocomplete(model=model_ids)
    async def continue_(
        self,
        interaction: discord.Interaction,
        model: int,
        steps: app_commands.Range[int, 1, 200_000] = 1000,
        max_minutes: app_commands.Range[int, 1, 1440] = 60,
        datasets: str = "",
    ) -> None:
        """Train an earlier model more (a new version); same labels, a new step budget."""
        team = team_of(interaction)
        s = self.bot.services
        parent = s.models.get(team, model)
        names = [n.strip() for n in datasets.split(",") if n.strip()]
        if not names:
            if parent.job_id is None:
                raise OutOfRange(
                    "That model was not trained by a job here; name its datasets with `datasets:`."
                )
            job = s.jobs.get(team, parent.job_id)
            names = [s.datasets.get_by_id(team, i).name for i in job.dataset_ids]
        architecture = json.loads((Path(parent.path) / "manifest.json").read_text())["model"]
        await self._offer(
            interaction, names, architecture, steps, max_minutes, f"more training of model #{model}", model
        )

    async def stop_job(self, interaction: discord.Interaction, job_id: int) -> None:
        team = team_of(interaction)
        require_editor(interaction, self.bot.services.teams.get(team))
        job = self.bot.services.jobs.request_stop(team, job_id)
        text = (
            f"Job #{job.id} was canceled before it started; its minutes are back."
            if job.state == JobState.CANCELED
            else f"Stopping job #{job.id}: it saves a checkpoint within a step and delivers what it has."
        )
        await interaction.response.send_message(text, ephemeral=True)

    @app_commands.command()
    @app_commands.describe(job="The job to stop")
    @app_commands.autocomplete(job=job_ids)
    async def stop(self, interaction: discord.Interaction, job: int) -> None:
        """Stop a job: queued ones are canceled, running ones keep their last checkpoint."""
        await self.stop_job(interaction, job)

    @app_commands.command()
    @app_commands.describe(job="The job (default: the team's newest)")
    @app_commands.autocomplete(job=job_ids)
    async def status(self, interaction: discord.Interaction, job: int | None = None) -> None:
        """State, progress and results of a job."""
        team = team_of(interaction)
        s = self.bot.services
        if job is None:
            newest = s.jobs.list_team(team, limit=1)
            if not newest:
                raise OutOfRange("This team has no jobs yet. Start one with `/train start`.")
            job = newest[0].id
        found = s.jobs.get(team, job)
        await interaction.response.send_message(
            embed=job_embed(found, s.jobs.last_progress(found.id)), ephemeral=True
        )

    @app_commands.command(name="list")
    async def list_(self, interaction: discord.Interaction) -> None:
        """The team's jobs, newest first."""
        jobs = self.bot.services.jobs.list_team(team_of(interaction), limit=20)
        lines = [
            f"#{j.id} **{j.state}** {j.steps_completed}/{j.steps} steps {j.description}".strip() for j in jobs
        ]
        await interaction.response.send_message(
            "\n".join(lines)[:1900] or "No jobs yet. Start one with `/train start`.", ephemeral=True
        )


async def setup(bot: FieldLensBot) -> None:
    await bot.add_cog(Train(bot))
