"""Keeps each team informed about the jobs it started from Discord.

Every few seconds, for each job with a progress message that is not done:
    - edit the progress message (state, a bar of steps, training time, ETA, loss, mAP) when something
      happened; through the interaction's webhook while its token lives (15 minutes), then through
      the channel with the bot's own token
    - post every state change to the team's channel (or where the job was started), one event at a
      time, recording each as it is posted; on SUCCEEDED or STOPPED also the metrics, the plots and
      the model files (or signed links when they are over the server's upload limit)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

import discord

from bot.ui import job_embed, model_embed, stop_view
from storage.domain import Job, JobEvent, JobState
from storage.model_folder import EDGE_FILES, ModelFolder
from storage.notices import Notice
from storage.wording import STATE_SENTENCES

if TYPE_CHECKING:
    from bot.client import FieldLensBot

log = logging.getLogger(__name__)
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024


class Notifier:
    def __init__(self, bot: FieldLensBot) -> None:
        self.bot = bot
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="fieldlens-notifier")

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        await self.bot.wait_until_ready()
        while not self.bot.is_closed():
            try:
                await self.tick()
            except Exception:
                log.exception("notifier tick failed; trying again")
            await asyncio.sleep(self.bot.settings.notify_seconds)

    async def tick(self) -> None:
        for notice in self.bot.services.notices.pending():
            try:
                await self.update(notice)
            except discord.HTTPException as e:
                log.warning("could not update job #%s in Discord (%s); will retry", notice.job_id, e)

    async def update(self, notice: Notice) -> None:
        jobs = self.bot.services.jobs
        events = jobs.events(notice.job_id, after=notice.announced_event_id)
        if not events:
            return
        job = jobs.get_any(notice.job_id)
        try:
            await self.edit_progress(notice, job)
        except (discord.NotFound, discord.Forbidden) as e:  # message deleted, channel hidden: announce anyway
            log.info("progress message of job #%s cannot be edited (%s)", job.id, e.status)
        for event in events:
            if event.kind == "state":
                await self.announce(notice, job, event)
            self.bot.services.notices.announced(job.id, event.id)
            if event.state is not None and event.state.is_final:
                self.bot.services.notices.done(job.id)  # only once its final state was posted

    async def edit_progress(self, notice: Notice, job: Job) -> None:
        if notice.message_id is None:
            return
        embed = job_embed(
            job, self.bot.services.jobs.last_progress(job.id), self.bot.page(job.team_id, f"/jobs/{job.id}")
        )
        view = stop_view(job)
        if notice.token_valid() and notice.application_id:
            webhook = discord.Webhook.partial(
                notice.application_id, notice.interaction_token or "", client=self.bot
            )
            try:
                await webhook.edit_message(notice.message_id, embed=embed, view=view)
                return
            except (discord.NotFound, discord.Forbidden, discord.HTTPException) as e:
                if isinstance(e, discord.HTTPException) and e.status >= 500:
                    raise
                log.info(
                    "interaction token of job #%s no longer works (%s); using the channel", job.id, e.status
                )
                self.bot.services.notices.expire_token(job.id)
        if notice.channel_id is not None:
            message = self.bot.get_partial_messageable(notice.channel_id).get_partial_message(
                notice.message_id
            )
            await message.edit(embed=embed, view=view)

    def _channel(self, notice: Notice, job: Job) -> discord.PartialMessageable | None:
        team = self.bot.services.teams.get(job.team_id)
        channel_id = team.channel_id or notice.channel_id
        return self.bot.get_partial_messageable(channel_id) if channel_id else None

    async def announce(self, notice: Notice, job: Job, event: JobEvent) -> None:
        channel = self._channel(notice, job)
        if channel is None:
            return
        reason = event.data.get("reason") or event.data.get("device") or ""
        state = event.state
        if state is None:  # only state events are announced, and every one names its state
            return
        named = f" ({job.description})" if job.description else ""
        text = f"Job {job.id}{named} is now **{state}**: {STATE_SENTENCES.get(state, '')}"
        if state == JobState.FAILED and job.error:
            text += f"\n{job.error}"
        elif reason and state not in (JobState.SUCCEEDED, JobState.STOPPED):
            text += f" {reason}"
        text += f"\nCharts, pictures and log: <{self.bot.page(job.team_id, f'/jobs/{job.id}')}>"
        mentions = discord.AllowedMentions.none()
        starter = job.config.get("discord_user_id")
        if state.is_final:
            text += f"\n{self._next_step(job, state)}"
            if isinstance(starter, int):  # tell whoever pressed Start, and nobody else
                text = f"<@{starter}> {text}"
                mentions = discord.AllowedMentions(
                    everyone=False, roles=False, users=[discord.Object(starter)], replied_user=False
                )
        delivered = state in (JobState.SUCCEEDED, JobState.STOPPED) and job.model_id
        if delivered and event.id == self._last_state(job):
            await self._results(channel, job, text, mentions)
        else:
            await channel.send(text, allowed_mentions=mentions)

    @staticmethod
    def _next_step(job: Job, state: JobState) -> str:
        """What the team can do now that the job has ended."""
        if state in (JobState.SUCCEEDED, JobState.STOPPED) and job.model_id:
            text = (
                f"Get model {job.model_id} with `/model download model:{job.model_id} target:`, or try it "
                f"on a photo with `/model test model:{job.model_id}`; `/model promote model:{job.model_id}` "
                "makes it the one your robots pull."
            )
            if state == JobState.STOPPED and job.steps_completed < job.steps:
                text += f" `/train retry job:{job.id}` trains the remaining steps."
            return text
        if state == JobState.FAILED:
            return (
                f"`/train retry job:{job.id}` runs it again from its last checkpoint (add "
                f"`batch_size:{max(job.batch_size // 2, 1)}` if it ran out of memory)."
            )
        if state == JobState.TRY_AGAIN_LATER:
            return f"When a job has finished, `/train retry job:{job.id}` queues it again."
        return f"`/train retry job:{job.id}` starts it again."

    def _last_state(self, job: Job) -> int:
        return self.bot.services.jobs.events(job.id, kinds=("state",))[-1].id

    async def _results(
        self,
        channel: discord.PartialMessageable,
        job: Job,
        text: str,
        mentions: discord.AllowedMentions,
    ) -> None:
        model = self.bot.services.models.get(job.team_id, job.model_id)  # type: ignore[arg-type]
        folder = ModelFolder(model.path)
        manifest = folder.manifest()
        files = [discord.File(path) for path in folder.pictures()]
        guild = self.bot.get_guild(int(job.team_id)) if job.team_id.isdigit() else None
        limit = guild.filesize_limit if guild else DEFAULT_UPLOAD_LIMIT
        model_bytes = sum(path.stat().st_size for path in folder.edge_files())
        used = sum(path.stat().st_size for path in folder.pictures())
        if model_bytes + used <= limit:
            files += [discord.File(path) for path in folder.edge_files()]
        else:
            links = [f"[{n}]({self.bot.signer.url(job.team_id, model.id, n)})" for n in EDGE_FILES.values()]
            text += f"\nModel files (links expire in {self.bot.settings.link_minutes} min): " + ", ".join(
                links
            )
        with contextlib.ExitStack() as stack:
            for f in files:
                stack.callback(f.close)
            await channel.send(
                text,
                embed=model_embed(model, manifest, self.bot.page(job.team_id, f"/models/{model.id}")),
                files=files,
                allowed_mentions=mentions,
            )
