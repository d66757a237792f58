"""`/train start|stop|status|list|continue|retry`: jobs for the worker, with a live progress message."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.checks import require_editor, team_of
from bot.shared import dataset_list, job_ids, model_ids, stop_job
from bot.ui import RETRYABLE, Confirm, job_embed, plan_embed, stop_view, with_pages
from bot.work import in_thread
from storage.domain import Job, JobState
from storage.errors import OutOfRange
from storage.job_retry import retry_job
from storage.model_folder import ModelFolder
from storage.plan import MODELS, suggested_steps
from storage.services import Services
from storage.wording import model_choice

if TYPE_CHECKING:
    from bot.client import FieldLensBot

MODEL_CHOICES = [app_commands.Choice(name=model_choice(m)[:100], value=m) for m in MODELS]


def _retry(
    services: Services, team: str, job_id: int, batch_size: int | None, max_minutes: int | None, user: int
) -> Job:
    return retry_job(services.jobs, team, job_id, batch_size, max_minutes, {"discord_user_id": user})


@app_commands.guild_only()
class Train(commands.GroupCog, group_name="train", group_description="Train detectors on your datasets."):
    def __init__(self, bot: FieldLensBot) -> None:
        self.bot = bot

    async def _offer(
        self,
        interaction: discord.Interaction,
        names: list[str],
        model: str,
        steps: int | None,
        max_minutes: int,
        description: str,
        from_model: int | None = None,
        batch_size: int | None = None,
    ) -> None:
        """Show the plan with Start and Cancel; Start queues the job and makes the message its progress.

        Without `steps`, the plan suggests them from the datasets' size (about 100 epochs).
        """
        team = team_of(interaction)
        s = self.bot.services
        require_editor(interaction, s.teams.get(team))
        config = dict(self.bot.settings.job_defaults)
        default_batch = int(config.pop("batch_size", 32))
        batch = batch_size or default_batch
        every = int(config.get("checkpoint_every", 100))
        plan, _, _ = s.jobs.plan(team, names, model, steps or every, batch, max_minutes, every)
        if steps is None:
            steps = suggested_steps(plan.train_images, plan.batch_size, every)
            plan, _, _ = s.jobs.plan(team, names, model, steps, batch, max_minutes, every)
        left = s.budget.balance(team)
        chosen_steps = steps

        async def start(button: discord.Interaction) -> None:
            job = s.jobs.create(
                team,
                names,
                model,
                chosen_steps,
                batch,
                max_minutes,
                description,
                from_model,
                {**config, "discord_user_id": button.user.id},
            )
            if job.state == JobState.TRY_AGAIN_LATER:
                await button.response.edit_message(content=self._later(job), embed=None, view=None)
                return
            page = self.bot.page(team, f"/jobs/{job.id}")
            await button.response.edit_message(
                content=None, embed=job_embed(job, {}, page), view=stop_view(job)
            )
            self._follow(button, job, button.message.id if button.message else None)

        await interaction.response.send_message(
            embed=plan_embed(names, model, plan, max_minutes, left, every),
            view=Confirm(interaction.user.id, "Start", start),
        )

    def _later(self, job: Job) -> str:
        reason = self.bot.services.jobs.events(job.id)[-1].data.get("reason", "")
        page = self.bot.page(job.team_id, f"/jobs/{job.id}")
        return f"Job {job.id}: TRY_AGAIN_LATER. {reason} (`/train retry job:{job.id}`) <{page}>"

    def _follow(self, interaction: discord.Interaction, job: Job, message_id: int | None) -> None:
        """Make `message_id` the job's live progress message (the notifier edits it and posts news)."""
        self.bot.services.notices.add(
            job.id,
            interaction.channel_id,
            message_id,
            interaction.application_id,
            interaction.token,
            datetime.now(UTC),
        )

    @app_commands.command()
    @app_commands.describe(
        datasets="Datasets to train on (identical labels), separated by commas",
        model="Detector: the default suits most robots",
        steps="Training steps; leave empty for about 100 epochs of your images (checkpoints every 100)",
        batch_size="Images per step (default 32); halve it if a job ran out of memory",
        max_minutes="Most training minutes, reserved from the team's budget; unused ones come back",
        description="A note to recognise the job by",
    )
    @app_commands.choices(model=MODEL_CHOICES)
    @app_commands.autocomplete(datasets=dataset_list)
    async def start(
        self,
        interaction: discord.Interaction,
        datasets: str,
        model: str = MODELS[0],
        steps: app_commands.Range[int, 1, 200_000] | None = None,
        batch_size: app_commands.Range[int, 1, 512] | None = None,
        max_minutes: app_commands.Range[int, 1, 1440] = 60,
        description: str = "",
    ) -> None:
        """Plan a training job: see batch size, epochs, time and budget, then press Start."""
        names = [n.strip() for n in datasets.split(",") if n.strip()]
        await self._offer(interaction, names, model, steps, max_minutes, description, batch_size=batch_size)

    @app_commands.command()
    @app_commands.describe(
        job="The ended job (FAILED, STOPPED, CANCELED or TRY_AGAIN_LATER)",
        batch_size="Images per step (default: the job's); halve it after an out-of-memory failure",
        max_minutes="Most training minutes to reserve (default: the job's)",
    )
    @app_commands.autocomplete(job=job_ids)
    async def retry(
        self,
        interaction: discord.Interaction,
        job: int,
        batch_size: app_commands.Range[int, 1, 512] | None = None,
        max_minutes: app_commands.Range[int, 1, 1440] | None = None,
    ) -> None:
        """Run an ended job again as a new job, from its last checkpoint when it has one."""
        team = team_of(interaction)
        s = self.bot.services
        require_editor(interaction, s.teams.get(team))
        old = s.jobs.get(team, job)
        if old.state not in RETRYABLE:
            retry_job(s.jobs, team, job)  # raises the sentence that says why, before deferring
        await interaction.response.defer(thinking=True)
        new = await in_thread(
            self.bot.settings, _retry, team, job, batch_size, max_minutes, interaction.user.id
        )
        if new.state == JobState.TRY_AGAIN_LATER:
            await interaction.followup.send(self._later(new))
            return
        step = new.config.get("resume_step")
        where = f"from its checkpoint at step {step}" if step else "from the start"
        message = await interaction.followup.send(
            f"Job {new.id} retries job {old.id} {where}; {new.max_minutes} min are reserved.",
            embed=job_embed(new, {}, self.bot.page(team, f"/jobs/{new.id}")),
            view=stop_view(new) or discord.utils.MISSING,
            wait=True,
        )
        self._follow(interaction, new, message.id)

    @app_commands.command(name="continue")
    @app_commands.describe(
        model="The model to train more (type its number or part of its name)",
        steps="More training steps; leave empty for about 100 epochs of the datasets",
        max_minutes="Most training minutes, reserved from the budget",
        datasets="Datasets (default: the ones the model was trained on), separated by commas",
    )
    @app_commands.autocomplete(model=model_ids)
    @app_commands.autocomplete(datasets=dataset_list)
    async def continue_(
        self,
        interaction: discord.Interaction,
        model: int,
        steps: app_commands.Range[int, 1, 200_000] | None = None,
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
        architecture = ModelFolder(parent.path).manifest().model
        await self._offer(
            interaction, names, architecture, steps, max_minutes, f"more training of model {model}", model
        )

    @app_commands.command()
    @app_commands.describe(job="The job to stop")
    @app_commands.autocomplete(job=job_ids)
    async def stop(self, interaction: discord.Interaction, job: int) -> None:
        """Stop a job: queued ones are canceled, running ones keep their last checkpoint."""
        await stop_job(interaction, job)

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
            embed=job_embed(found, s.jobs.last_progress(found.id), self.bot.page(team, f"/jobs/{found.id}")),
            ephemeral=True,
        )

    @app_commands.command(name="list")
    async def list_(self, interaction: discord.Interaction) -> None:
        """The team's jobs, newest first."""
        team = team_of(interaction)
        jobs = self.bot.services.jobs.list_team(team, limit=20)
        lines = [
            f"job {j.id} **{j.state}** {j.steps_completed}/{j.steps} steps {j.description}".strip()
            for j in jobs
        ]
        if not lines:
            await interaction.response.send_message(
                "No jobs yet. Start one with `/train start`.", ephemeral=True
            )
            return
        await interaction.response.send_message(
            with_pages("\n".join(lines), self.bot.page(team, "/dashboard")), ephemeral=True
        )


async def setup(bot: FieldLensBot) -> None:
    await bot.add_cog(Train(bot))
