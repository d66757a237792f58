"""Who may do what: a team is its Discord server; changing things needs the team role or admin."""

from __future__ import annotations

import discord

from storage.errors import UserError
from storage.teams import Team


class NotInServer(UserError):
    """A command was used outside a server (in direct messages)."""


class NotAllowed(UserError):
    """The member lacks the role a command needs."""


def team_of(interaction: discord.Interaction) -> str:
    if interaction.guild_id is None:
        raise NotInServer(
            "FieldLens works inside your team's Discord server. Use the commands there, "
            "not in direct messages."
        )
    return str(interaction.guild_id)


def is_admin(interaction: discord.Interaction) -> bool:
    return interaction.permissions.administrator


def require_editor(interaction: discord.Interaction, team: Team) -> None:
    """Uploading, training and deleting need the team's role (set by /fieldlens setup) or admin rights."""
    if is_admin(interaction):
        return
    roles = getattr(interaction.user, "roles", [])
    if team.role_id is not None and any(r.id == team.role_id for r in roles):
        return
    if team.role_id is None:
        raise NotAllowed(
            "Only server administrators may do this until an administrator picks the team's role with "
            "`/fieldlens setup`."
        )
    raise NotAllowed(f"You need the <@&{team.role_id}> role to do this; everyone may view.")
