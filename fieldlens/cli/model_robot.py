"""`fieldlens model promote|export|compare|token`: what `/model promote`, `/model download target:`,
`/model compare` and `/model token ...` do in Discord. Part of the `fieldlens model` group
(fieldlens/cli/train.py adds these commands to it)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import click

from fieldlens.cli.common import State, emit, json_option, team_option
from storage.domain import Model
from storage.errors import UserError
from storage.model_folder import ModelFolder
from storage.targets import TARGETS, target_zip, zip_name


def model_of(state: State, team: str, ref: str) -> Model:
    """MODEL is a model's number (`3` or `model 3`) or a part of its name that only one model has."""
    number = ref.lower().removeprefix("model").strip()
    if number.isdigit():
        return state.services.models.get(team, int(number))
    named = [m for m in state.services.models.list_team(team)[::-1] if ref.lower() in m.name.lower()]
    if len(named) != 1:
        found = ", ".join(f"model {m.id} ({m.name})" for m in named[:5])
        raise UserError(
            f"{len(named)} models match {ref!r}{': ' + found if found else ''}. Give its number "
            "(`fieldlens model list` shows them)."
        )
    return named[0]


@click.command()
@click.argument("model_ref", metavar="MODEL")
@team_option
@json_option
@click.pass_obj
def promote(state: State, model_ref: str, team: str, as_json: bool) -> None:
    """Make MODEL the one the team's robots pull (`fieldlens-edge pull`), whatever is trained later."""
    chosen = state.services.models.promote(team, model_of(state, team, model_ref).id, by_user="cli")
    emit(
        {"promoted": chosen.id, "name": chosen.name},
        f"Model {chosen.id} ({chosen.name}) is now the team's robot model: `fieldlens-edge pull` gets it.",
    )


@click.command("export")
@click.argument("model_ref", metavar="MODEL")
@click.option(
    "--target", type=click.Choice(list(TARGETS)), required=True, help="The robot to lay the zip out for."
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the zip (default: fieldlens-model-<id>-<target>.zip here).",
)
@team_option
@json_option
@click.pass_obj
def export(state: State, model_ref: str, target: str, out: Path | None, team: str, as_json: bool) -> None:
    """A zip of MODEL laid out for a Limelight, an FTC robot, a Raspberry Pi or an FRC co-processor."""
    model = model_of(state, team, model_ref)
    out = out or Path(zip_name(model.id, target))
    out.write_bytes(target_zip(ModelFolder(model.path), target, model.id, model.name))
    emit(
        {"model": model.id, "target": target, "zip": str(out), "bytes": out.stat().st_size},
        f"Wrote {out} for {TARGETS[target].title}: unzip it and follow HOW-TO.txt inside.",
    )


@click.command()
@click.argument("first", metavar="A")
@click.argument("second", metavar="B")
@click.option("--dataset", default=None, help="Compare on this dataset's test (else validation) images.")
@team_option
@json_option
@click.pass_obj
def compare(state: State, first: str, second: str, dataset: str | None, team: str, as_json: bool) -> None:
    """Models A and B on A's test (else validation) images: mAP, AP per label, thresholds, size, latency."""
    from edge.detector import TFLiteDetector
    from storage.model_compare import compare_models

    def open_detector(path: Path) -> TFLiteDetector:
        return TFLiteDetector(path, threshold=0.0)  # every detection: mAP sweeps the scores itself

    a, b = model_of(state, team, first), model_of(state, team, second)
    result = compare_models(state.services, team, a, b, open_detector, dataset)
    emit(asdict(result), f"{result.heading()}\n{result.table()}")


@click.group()
def token() -> None:
    """Edge tokens: what the team's robots pull its model with (only their hash is stored)."""


@token.command("create")
@click.argument("name")
@team_option
@json_option
@click.pass_obj
def token_create(state: State, name: str, team: str, as_json: bool) -> None:
    """A token for the robot NAME; shown once, with the command to run on the robot."""
    from storage.edge_tokens import token_name

    value = state.services.models.tokens.create(team, name, created_by="cli")
    server = state.settings.public_url
    command = f"fieldlens-edge pull --server {server} --token {value} --dest models"
    emit(
        {"team": team, "name": token_name(name), "token": value, "pull": command},
        f"Edge token {token_name(name)!r} for team {team} (store it now; it is not shown again):\n{value}\n"
        f"On the robot:\n  {command}",
    )


@token.command("list")
@team_option
@json_option
@click.pass_obj
def token_list(state: State, team: str, as_json: bool) -> None:
    """The team's live tokens, newest first, and when each last pulled a model."""
    tokens = state.services.models.tokens.list_team(team)
    emit(
        [asdict(t) for t in tokens],
        "\n".join(
            f"{t.name:<24} made {t.created_at:%Y-%m-%d %H:%M}  last pull "
            + (f"{t.last_pull_at:%Y-%m-%d %H:%M}" if t.last_pull_at else "never")
            for t in tokens
        )
        or "No edge tokens yet. Make one with `fieldlens model token create NAME`.",
    )


@token.command("revoke")
@click.argument("name")
@team_option
@json_option
@click.pass_obj
def token_revoke(state: State, name: str, team: str, as_json: bool) -> None:
    """Stop the token NAME at once: robots using it are refused from their next request."""
    revoked = state.services.models.tokens.revoke(team, name)
    emit(asdict(revoked), f"Edge token {revoked.name!r} is revoked: robots using it are refused from now on.")
