"""`/dataset upload|list|info|preview|combine|delete`."""

from __future__ import annotations

import io
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.checks import require_editor, team_of
from bot.download import DownloadRefused, fetch_to_file
from bot.shared import dataset_list, dataset_names
from bot.ui import Confirm, dataset_embed, with_pages
from bot.work import in_thread
from edge.draw import contact_sheet
from storage.datasets import DatasetReport
from storage.errors import OutOfRange, UserError
from storage.services import Services

if TYPE_CHECKING:
    from bot.client import FieldLensBot


def _ingest(services: Services, team: str, name: str, path: Path) -> tuple[DatasetReport, bytes]:
    report = services.datasets.add(team, name, path)
    return report, contact_sheet(*services.datasets.preview_images(team, name))


def _preview(services: Services, team: str, name: str) -> bytes:
    return contact_sheet(*services.datasets.preview_images(team, name))


def _report(services: Services, team: str, name: str) -> DatasetReport:
    return services.datasets.report(team, name)


def _combine(services: Services, team: str, name: str, names: list[str]) -> DatasetReport:
    return services.datasets.combine(team, name, names)


def _delete(services: Services, team: str, name: str) -> None:
    services.datasets.delete(team, name)


@app_commands.guild_only()
class DatasetCog(commands.GroupCog, group_name="dataset", group_description="Upload and inspect datasets."):
    REPORTS_KEPT = 64

    def __init__(self, bot: FieldLensBot) -> None:
        self.bot = bot
        # A stored dataset never changes (combining makes a new one), so its report, which reads every
        # image row, is computed once, off the event loop, and kept by dataset id.
        self.reports: OrderedDict[int, DatasetReport] = OrderedDict()

    def _keep(self, report: DatasetReport) -> DatasetReport:
        self.reports[report.dataset.id] = report
        self.reports.move_to_end(report.dataset.id)
        while len(self.reports) > self.REPORTS_KEPT:
            self.reports.popitem(last=False)
        return report

    async def report(self, team: str, name: str) -> DatasetReport:
        dataset = self.bot.services.datasets.get(team, name)  # NotFound at once
        if dataset.id in self.reports:
            return self._keep(self.reports[dataset.id])
        return self._keep(await in_thread(self.bot.settings, _report, team, name))

    @app_commands.command()
    @app_commands.describe(
        name="A name for the dataset (letters, digits, spaces, - _ .)",
        file="The zipped Pascal VOC dataset (Annotations/ and JPEGImages/ folders)",
        url="A direct http(s) link to the zip, for zips over Discord's attachment limit",
    )
    async def upload(
        self,
        interaction: discord.Interaction,
        name: str,
        file: discord.Attachment | None = None,
        url: str | None = None,
    ) -> None:
        """Upload a zipped Pascal VOC dataset; it is checked and you get a report and a preview."""
        team = team_of(interaction)
        require_editor(interaction, self.bot.services.teams.get(team))
        if (file is None) == (url is None):
            raise OutOfRange(
                "Give either a zip file or a link to one (`url:`), not both or neither. This server accepts "
                f"attachments up to {interaction.filesize_limit / 1e6:.0f} MB; put bigger zips on a file "
                "host and give the link."
            )
        limit = self.bot.settings.max_upload_bytes
        if file is not None and file.size > limit:
            raise OutOfRange(
                f"That zip is {file.size / 1e6:.0f} MB; the most FieldLens accepts is {limit / 1e6:.0f} MB."
            )
        await interaction.response.defer(thinking=True)
        with tempfile.TemporaryDirectory(prefix="fieldlens-upload-") as tmp:
            path = Path(tmp) / "dataset.zip"
            if file is not None:
                try:
                    await file.save(path)
                except discord.HTTPException:
                    raise DownloadRefused(
                        "Discord did not hand over the attachment. Upload it again."
                    ) from None
            else:
                await fetch_to_file(
                    url or "",
                    path,
                    limit,
                    self.bot.settings.url_timeout_seconds,
                    self.bot.settings.allow_private_urls,
                )
            report, preview = await in_thread(self.bot.settings, _ingest, team, name, path)
        self._keep(report)
        await interaction.followup.send(
            f"Stored dataset **{report.dataset.name}**. Train on it with `/train start`.",
            embed=dataset_embed(report, self.bot.page(team, f"/datasets/{report.dataset.id}")).set_image(
                url="attachment://preview.png"
            ),
            file=discord.File(io.BytesIO(preview), "preview.png"),
        )

    @app_commands.command(name="list")
    async def list_(self, interaction: discord.Interaction) -> None:
        """List the team's datasets."""
        team = team_of(interaction)
        datasets = self.bot.services.datasets.list_team(team)
        lines = [
            f"**{d.name}**: {d.image_count} images, {d.box_count} boxes, labels "
            f"{', '.join(f'`{k}`' for k in d.label_counts)}"
            for d in datasets
        ]
        if not lines:
            await interaction.response.send_message(
                "No datasets yet. Upload one with `/dataset upload`.", ephemeral=True
            )
            return
        await interaction.response.send_message(
            with_pages("\n".join(lines), self.bot.page(team, "/dashboard")), ephemeral=True
        )

    @app_commands.command()
    @app_commands.describe(name="The dataset")
    @app_commands.autocomplete(name=dataset_names)
    async def info(self, interaction: discord.Interaction, name: str) -> None:
        """The validation report of a dataset: counts per label, warnings and advice."""
        team = team_of(interaction)
        report = await self.report(team, name)
        page = self.bot.page(team, f"/datasets/{report.dataset.id}")
        await interaction.response.send_message(embed=dataset_embed(report, page), ephemeral=True)

    @app_commands.command()
    @app_commands.describe(name="The dataset")
    @app_commands.autocomplete(name=dataset_names)
    async def preview(self, interaction: discord.Interaction, name: str) -> None:
        """A contact sheet of a dataset's images with their boxes drawn."""
        team = team_of(interaction)
        dataset = self.bot.services.datasets.get(team, name)  # NotFound before deferring
        await interaction.response.defer(thinking=True, ephemeral=True)
        png = await in_thread(self.bot.settings, _preview, team, name)
        await interaction.followup.send(
            f"Dataset **{name}**; every image with its boxes is on its page: "
            f"<{self.bot.page(team, f'/datasets/{dataset.id}')}>",
            file=discord.File(io.BytesIO(png), f"{name}-preview.png"),
            ephemeral=True,
        )

    @app_commands.command()
    @app_commands.describe(
        name="Name of the new dataset", datasets="Datasets to combine, separated by commas"
    )
    @app_commands.autocomplete(datasets=dataset_list)
    async def combine(self, interaction: discord.Interaction, name: str, datasets: str) -> None:
        """Combine datasets with identical labels into a new one (the originals stay)."""
        team = team_of(interaction)
        require_editor(interaction, self.bot.services.teams.get(team))
        names = [n.strip() for n in datasets.split(",") if n.strip()]
        if len(names) < 2:
            raise OutOfRange("Name at least two datasets to combine, separated by commas.")
        await interaction.response.defer(thinking=True)
        report = self._keep(await in_thread(self.bot.settings, _combine, team, name, names))
        await interaction.followup.send(
            f"Combined {', '.join(names)} into **{report.dataset.name}**.",
            embed=dataset_embed(report, self.bot.page(team, f"/datasets/{report.dataset.id}")),
        )

    @app_commands.command()
    @app_commands.describe(name="The dataset to delete")
    @app_commands.autocomplete(name=dataset_names)
    async def delete(self, interaction: discord.Interaction, name: str) -> None:
        """Delete a dataset (asks to confirm; refused while a job uses it)."""
        team = team_of(interaction)
        require_editor(interaction, self.bot.services.teams.get(team))
        dataset = self.bot.services.datasets.get(team, name)
        page = self.bot.page(team, f"/datasets/{dataset.id}")

        async def confirmed(button_interaction: discord.Interaction) -> None:
            await button_interaction.response.defer()  # removing images takes a while; answer first
            try:
                await in_thread(self.bot.settings, _delete, team, name)
            except UserError as e:
                await button_interaction.edit_original_response(content=f"{e}\nIts page: <{page}>", view=None)
                return
            await button_interaction.edit_original_response(
                content=f"Deleted dataset **{name}**. The team's other datasets and jobs: "
                f"<{self.bot.page(team, '/dashboard')}>",
                view=None,
            )

        await interaction.response.send_message(
            f"Delete dataset **{name}** ({dataset.image_count} images)? This cannot be undone. "
            f"Look at it first: <{page}>",
            view=Confirm(interaction.user.id, "Delete", confirmed, discord.ButtonStyle.danger),
            ephemeral=True,
        )


async def setup(bot: FieldLensBot) -> None:
    await bot.add_cog(DatasetCog(bot))
