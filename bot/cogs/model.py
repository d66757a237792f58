"""`/model list|info|download|test`."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.checks import team_of
from bot.cogs.train import model_ids
from bot.ui import model_embed
from storage.errors import UserError
from storage.models import EDGE_FILES

if TYPE_CHECKING:
    from bot.client import FieldLensBot

DOWNLOAD_FILES = tuple(EDGE_FILES.values())  # the int8 model and labels.txt
MAX_TEST_IMAGE_BYTES = 20 * 1024 * 1024


class BadImage(UserError):
    """The photo for /model test cannot be read."""


def detect(model_dir: str, image: bytes) -> tuple[bytes, list[dict[str, Any]]]:
    """Run the int8 model through the edge runtime on one photo; return an annotated PNG and detections."""
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
    detector = TFLiteDetector(Path(model_dir) / "model_int8.tflite", threshold=0.3)
    detections = detector.detect(frame)
    out = io.BytesIO()
    annotate(frame, detections).save(out, "PNG")
    return out.getvalue(), [d.to_json() for d in detections]


@app_commands.guild_only()
class ModelCog(commands.GroupCog, group_name="model", group_description="Your trained models."):
    def __init__(self, bot: FieldLensBot) -> None:
        self.bot = bot

    def _manifest(self, path: str) -> dict[str, Any]:
        return json.loads((Path(path) / "manifest.json").read_text())

    @app_commands.command(name="list")
    async def list_(self, interaction: discord.Interaction) -> None:
        """The team's models, newest first."""
        models = self.bot.services.models.list_team(team_of(interaction))[::-1][:20]
        lines = [
            f"#{m.id} **{m.name}**: mAP@0.5 int8 {m.metrics.get('map50_int8', 0):.3f}, "
            f"labels {', '.join(m.labels)}"
            for m in models
        ]
        await interaction.response.send_message(
            "\n".join(lines)[:1900] or "No models yet. Train one with `/train start`.", ephemeral=True
        )

    @app_commands.command()
    @app_commands.describe(model="The model")
    @app_commands.autocomplete(model=model_ids)
    async def info(self, interaction: discord.Interaction, model: int) -> None:
        """A model's metrics (float and int8 mAP, per-label AP) and files."""
        found = self.bot.services.models.get(team_of(interaction), model)
        await interaction.response.send_message(
            embed=model_embed(found, self._manifest(found.path)), ephemeral=True
        )

    @app_commands.command()
    @app_commands.describe(model="The model to download")
    @app_commands.autocomplete(model=model_ids)
    async def download(self, interaction: discord.Interaction, model: int) -> None:
        """The int8 .tflite and labels.txt, as attachments or (when too big) signed links."""
        team = team_of(interaction)
        found = self.bot.services.models.get(team, model)
        folder = Path(found.path)
        size = sum((folder / n).stat().st_size for n in DOWNLOAD_FILES)
        if size <= interaction.filesize_limit:
            files = [discord.File(folder / n) for n in DOWNLOAD_FILES]
            try:
                await interaction.response.send_message(
                    f"Model #{found.id}: copy both files to your robot (see the README for FTC and the Pi).",
                    files=files,
                    ephemeral=True,
                )
            finally:
                for f in files:
                    f.close()
            return
        links = "\n".join(f"- [{n}]({self.bot.signer.url(team, found.id, n)})" for n in DOWNLOAD_FILES)
        await interaction.response.send_message(
            f"Model #{found.id} is over this server's upload limit; download it within "
            f"{self.bot.settings.link_minutes} min:\n{links}",
            ephemeral=True,
        )

    @app_commands.command()
    @app_commands.describe(model="The model to try", image="A photo (JPEG or PNG)")
    @app_commands.autocomplete(model=model_ids)
    async def test(self, interaction: discord.Interaction, model: int, image: discord.Attachment) -> None:
        """Run a model on a photo and get the photo back with its detections drawn."""
        found = self.bot.services.models.get(team_of(interaction), model)
        if image.size > MAX_TEST_IMAGE_BYTES:
            raise BadImage("That photo is over 20 MB. Send a smaller one.")
        await interaction.response.defer(thinking=True)
        data = await image.read()
        png, detections = await asyncio.to_thread(detect, found.path, data)
        lines = [f"`{d['label']}` {d['score']:.2f}" for d in detections] or ["nothing detected"]
        await interaction.followup.send(
            f"Model #{found.id} on {image.filename}: " + ", ".join(lines),
            file=discord.File(io.BytesIO(png), "detections.png"),
        )


async def setup(bot: FieldLensBot) -> None:
    await bot.add_cog(ModelCog(bot))
