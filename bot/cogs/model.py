"""`/model list|info|download|test`; `promote`, `compare` and `token ...` are in bot/cogs/model_robot.py."""

from __future__ import annotations

import asyncio
import io
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.checks import team_of
from bot.cogs.model_robot import RobotCommands, robot_line
from bot.shared import model_ids
from bot.ui import model_embed, with_pages
from storage.domain import Model
from storage.errors import UserError
from storage.model_folder import EDGE_FILES, ModelFolder
from storage.targets import TARGETS, target_zip, zip_name

if TYPE_CHECKING:
    from bot.client import FieldLensBot

MAX_TEST_IMAGE_BYTES = 20 * 1024 * 1024
TARGET_CHOICES = [app_commands.Choice(name=spec.title, value=name) for name, spec in TARGETS.items()]


class BadImage(UserError):
    """The photo for /model test cannot be read."""


def detect(model_dir: str, image: bytes) -> tuple[bytes, list[dict[str, Any]], str]:
    """Run the int8 model through the edge runtime on one photo, at the model's own thresholds (as
    `fieldlens-edge run` does by default); return an annotated PNG, the detections and the thresholds."""
    import numpy as np
    from PIL import Image, ImageOps, UnidentifiedImageError

    from edge.detector import TFLiteDetector
    from edge.draw import annotate

    try:
        photo = Image.open(io.BytesIO(image))
        photo.load()
    except (UnidentifiedImageError, OSError):
        raise BadImage(
            "That attachment is not an image FieldLens can read. Send a JPEG or PNG photo."
        ) from None
    frame = np.asarray(ImageOps.exif_transpose(photo).convert("RGB"))
    detector = TFLiteDetector(ModelFolder(model_dir).int8_model)
    detections = detector.detect(frame)
    out = io.BytesIO()
    annotate(frame, detections).save(out, "PNG")
    return out.getvalue(), [d.to_json() for d in detections], detector.thresholds.describe()


@app_commands.guild_only()
class ModelCog(
    RobotCommands, commands.GroupCog, group_name="model", group_description="Your trained models."
):
    def __init__(self, bot: FieldLensBot) -> None:
        self.bot = bot

    @app_commands.command(name="list")
    async def list_(self, interaction: discord.Interaction) -> None:
        """The team's models, newest first."""
        team = team_of(interaction)
        models = self.bot.services.models.list_team(team)[::-1][:20]
        lines = [
            f"model {m.id} **{m.name}**: mAP@0.5 int8 {m.metrics.get('map50_int8', 0):.3f}, "
            f"labels {', '.join(m.labels)}"
            + (" · **promoted: robots pull it**" if m.promoted else "")
            + (" · flagged: failed the int8 check, never sent to robots" if m.flagged else "")
            for m in models
        ]
        if not lines:
            await interaction.response.send_message(
                "No models yet. Train one with `/train start`.", ephemeral=True
            )
            return
        await interaction.response.send_message(
            with_pages("\n".join([robot_line(self.bot, team), *lines]), self.bot.page(team, "/dashboard")),
            ephemeral=True,
        )

    @app_commands.command()
    @app_commands.describe(model="The model (type its number or part of its name)")
    @app_commands.autocomplete(model=model_ids)
    async def info(self, interaction: discord.Interaction, model: int) -> None:
        """A model's metrics (float and int8 mAP, per-label AP), thresholds, precision-recall curves."""
        team = team_of(interaction)
        found = self.bot.services.models.get(team, model)
        page = self.bot.page(team, f"/models/{found.id}")
        folder = ModelFolder(found.path)
        embed = model_embed(found, folder.manifest(), page)
        if not folder.quality.is_file():  # delivered before FieldLens drew it
            await interaction.response.send_message(embed=embed, ephemeral=True)
            return
        embed.set_image(url=f"attachment://{folder.quality.name}")
        picture = discord.File(folder.quality)
        try:
            await interaction.response.send_message(embed=embed, file=picture, ephemeral=True)
        finally:
            picture.close()

    @app_commands.command()
    @app_commands.describe(
        model="The model to download",
        target="Your robot: a zip laid out for it, with a HOW-TO (without: the model and labels files)",
    )
    @app_commands.autocomplete(model=model_ids)
    @app_commands.choices(target=TARGET_CHOICES)
    async def download(
        self, interaction: discord.Interaction, model: int, target: app_commands.Choice[str] | None = None
    ) -> None:
        """The model for your robot: a zip per target with a HOW-TO, or the int8 .tflite and labels."""
        team = team_of(interaction)
        found = self.bot.services.models.get(team, model)
        if target is not None:
            await self._download_target(interaction, team, found, target.value)
            return
        paths = ModelFolder(found.path).edge_files()
        if sum(path.stat().st_size for path in paths) <= interaction.filesize_limit:
            files = [discord.File(path) for path in paths]
            try:
                await interaction.response.send_message(
                    f"Model {found.id}: copy both files to your robot, or add `target:` for a zip laid out "
                    "for a Limelight, an FTC robot, a Raspberry Pi or an FRC co-processor, with a HOW-TO. "
                    f"Its page, with downloads per robot: <{self.bot.page(team, f'/models/{found.id}')}>",
                    files=files,
                    ephemeral=True,
                )
            finally:
                for f in files:
                    f.close()
            return
        links = "\n".join(f"- [{n}]({self.bot.signer.url(team, found.id, n)})" for n in EDGE_FILES.values())
        await interaction.response.send_message(
            f"Model {found.id} is over this server's upload limit; download it within "
            f"{self.bot.settings.link_minutes} min:\n{links}\n"
            f"Its page, with downloads per robot: <{self.bot.page(team, f'/models/{found.id}')}>",
            ephemeral=True,
        )

    async def _download_target(
        self, interaction: discord.Interaction, team: str, found: Model, target: str
    ) -> None:
        """The target's zip as an attachment, or a signed link when it is over the upload limit."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        data = await asyncio.to_thread(target_zip, ModelFolder(found.path), target, found.id, found.name)
        name = zip_name(found.id, target)
        title = TARGETS[target].title
        page = f"Its page: <{self.bot.page(team, f'/models/{found.id}')}>"
        if len(data) <= interaction.filesize_limit:
            await interaction.followup.send(
                f"Model {found.id} for {title}: unzip it and follow HOW-TO.txt inside. {page}",
                file=discord.File(io.BytesIO(data), name),
                ephemeral=True,
            )
            return
        url = self.bot.signer.url(team, found.id, f"{target}.zip")
        await interaction.followup.send(
            f"Model {found.id} for {title} is over this server's upload limit; download it within "
            f"{self.bot.settings.link_minutes} min: [{name}]({url})\n{page}",
            ephemeral=True,
        )

    @app_commands.command()
    @app_commands.describe(model="The model to try", image="A photo (JPEG or PNG)")
    @app_commands.autocomplete(model=model_ids)
    async def test(self, interaction: discord.Interaction, model: int, image: discord.Attachment) -> None:
        """Run a model on a photo, at its own thresholds, and get the photo back with its detections drawn."""
        found = self.bot.services.models.get(team_of(interaction), model)
        if image.size > MAX_TEST_IMAGE_BYTES:
            raise BadImage("That photo is over 20 MB. Send a smaller one.")
        await interaction.response.defer(thinking=True)
        data = await image.read()
        png, detections, thresholds = await asyncio.to_thread(detect, found.path, data)
        lines = [f"`{d['label']}` {d['score']:.2f}" for d in detections] or ["nothing detected"]
        await interaction.followup.send(
            f"Model {found.id} on {image.filename}: "
            + ", ".join(lines)
            + f"\n(score thresholds {thresholds}; "
            "`fieldlens-edge run` uses the same unless given `--threshold`) "
            f"<{self.bot.page(found.team_id, f'/models/{found.id}')}>",
            file=discord.File(io.BytesIO(png), "detections.png"),
        )


async def setup(bot: FieldLensBot) -> None:
    await bot.add_cog(ModelCog(bot))
