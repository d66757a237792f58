"""`fieldlens dataset ...`: Pascal VOC datasets of a team.

`dataset add` is timed end to end (bench/ingest.py): what only `preview` and `synth` need is
imported inside them.
"""

from __future__ import annotations

from pathlib import Path

import click

from fieldlens.cli.common import State, emit, json_option, team_option
from storage.datasets import DatasetReport, split_counts


def format_report(report: DatasetReport) -> str:
    d = report.dataset
    lines = [
        f"Dataset {d.name!r}: {d.image_count} images ({split_counts(report)}), {d.box_count} boxes, "
        f"{report.negative_images} without objects.",
        f"Read as: {d.layout} export." + (f" {d.split_note}" if d.split_note else ""),
        "",
        f"  {'label':<24} {'images':>7} {'boxes':>7}",
    ]
    for label, boxes in sorted(d.label_counts.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {label:<24} {report.label_images.get(label, 0):>7} {boxes:>7}")
    if d.warnings:
        lines += ["", "Warnings:"] + [f"  - {w}" for w in d.warnings]
    if d.lint:
        lines += ["", "Advice:"] + [f"  - {w}" for w in d.lint]
    return "\n".join(lines)


@click.group()
def dataset() -> None:
    """Upload, inspect, combine and delete Pascal VOC datasets."""


@dataset.command("add")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--name", required=True, help="Name of the new dataset (letters, digits, ' _-.').")
@team_option
@json_option
@click.pass_obj
def add(state: State, path: Path, name: str, team: str, as_json: bool) -> None:
    """Validate and store the VOC zip or folder PATH (Annotations/*.xml + JPEGImages/*)."""
    report = state.services.datasets.add(team, name, path)
    emit(report.to_json(), format_report(report))


@dataset.command("list")
@team_option
@json_option
@click.pass_obj
def list_(state: State, team: str, as_json: bool) -> None:
    """List the team's datasets."""
    items = state.services.datasets.list_team(team)
    data = [
        {"id": d.id, "name": d.name, "images": d.image_count, "boxes": d.box_count, "labels": d.label_counts}
        for d in items
    ]
    text = (
        "\n".join(
            f"{d.name:<24} {d.image_count:>6} images {d.box_count:>7} boxes  {', '.join(d.label_counts)}"
            for d in items
        )
        or "No datasets yet. Add one with `fieldlens dataset add PATH --name NAME`."
    )
    emit(data, text)


@dataset.command("info")
@click.argument("name")
@team_option
@json_option
@click.pass_obj
def show(state: State, name: str, team: str, as_json: bool) -> None:
    """Counts per label, warnings and advice for dataset NAME."""
    report = state.services.datasets.report(team, name)
    emit(report.to_json(), format_report(report))


@dataset.command("preview")
@click.argument("name")
@click.option(
    "--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="PNG file to write."
)
@click.option("--count", default=12, show_default=True, type=click.IntRange(1, 64), help="Images to show.")
@team_option
@json_option
@click.pass_obj
def preview(state: State, name: str, out: Path, count: int, team: str, as_json: bool) -> None:
    """Write a PNG contact sheet of dataset NAME with its boxes drawn."""
    from edge.draw import contact_sheet

    png = contact_sheet(*state.services.datasets.preview_images(team, name, count))
    out.write_bytes(png)
    emit({"path": str(out), "bytes": len(png)}, f"Wrote {out}")


@dataset.command("combine")
@click.argument("new_name")
@click.argument("names", nargs=-1, required=True)
@team_option
@json_option
@click.pass_obj
def combine(state: State, new_name: str, names: tuple[str, ...], team: str, as_json: bool) -> None:
    """Make dataset NEW_NAME from datasets NAMES (identical labels); the originals stay."""
    report = state.services.datasets.combine(team, new_name, names)
    emit(report.to_json(), format_report(report))


@dataset.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@team_option
@json_option
@click.pass_obj
def delete(state: State, name: str, yes: bool, team: str, as_json: bool) -> None:
    """Delete dataset NAME and the images no other dataset uses."""
    state.services.datasets.get(team, name)
    if not yes and not as_json:
        click.confirm(f"Delete dataset {name!r}?", abort=True)
    state.services.datasets.delete(team, name)
    emit({"deleted": name}, f"Deleted dataset {name!r}.")


@dataset.command("synth")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--images", default=60, show_default=True, type=click.IntRange(1, 100_000), help="Images to make."
)
@click.option("--seed", default=0, show_default=True, help="Random seed.")
@json_option
def synth(out: Path, images: int, seed: int, as_json: bool) -> None:
    """Write a synthetic VOC zip (coloured shapes) to OUT, for trying FieldLens without data."""
    from storage.voc.synth import make_voc_zip

    data = make_voc_zip(out, images=images, seed=seed)
    emit({"path": str(out), "images": images, "bytes": len(data)}, f"Wrote {images} images to {out}")
