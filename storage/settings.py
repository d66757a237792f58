"""The one settings object, read from the environment (prefix ``FIELDLENS_``).

Build it once per entry point with :func:`load_settings`; nothing else reads ``os.environ``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from storage.errors import UserError

DEFAULT_HOME = Path.home() / ".fieldlens"


class MissingSecret(UserError):
    """A command needs a secret that is not set."""


class Settings(BaseSettings):
    """FieldLens configuration. Every field is documented in the README (a test checks)."""

    model_config = SettingsConfigDict(env_prefix="FIELDLENS_", frozen=True, extra="ignore")

    home: Path = Field(DEFAULT_HOME, description="Data folder: database, images, models.")
    discord_token: SecretStr | None = Field(None, description="Discord bot token (only `fieldlens bot`).")
    max_upload_bytes: int = Field(2 * 1024**3, ge=1, description="Largest total uncompressed dataset size.")
    max_upload_files: int = Field(50_000, ge=1, description="Most files a dataset zip may hold.")
    max_compression_ratio: int = Field(200, ge=2, description="Largest compression ratio of one zip member.")
    val_fraction: float = Field(0.2, ge=0.0, lt=1.0, description="Share of images held out for validation.")
    split_seed: int = Field(1234, description="Seed of the train/validation split.")
    team_minutes: int = Field(600, ge=0, description="Training minutes a new team starts with.")
    max_queued_per_team: int = Field(
        3, ge=1, description="Queued jobs a team may have before TRY_AGAIN_LATER."
    )
    max_queued_total: int = Field(50, ge=1, description="Queued jobs of all teams before TRY_AGAIN_LATER.")
    max_job_minutes: int = Field(24 * 60, ge=1, description="Largest maximum training time of one job.")
    max_job_attempts: int = Field(
        3, ge=1, description="Times a job is started before a dead worker fails it."
    )
    heartbeat_seconds: float = Field(5.0, gt=0, description="How often a worker reports that it is alive.")
    worker_timeout_seconds: float = Field(
        60.0, gt=0, description="Silence after which a worker counts as dead and its job is recovered."
    )
    stall_seconds: float = Field(
        1800.0, gt=0, description="A training process without progress for this long is killed."
    )
    training_idle_class: bool = Field(
        True,
        description="Run the embedded worker's training in Linux's idle CPU class, so that the bot on "
        "the same machine always answers first (false: a lower priority, nice 10).",
    )
    budget_reset_day: int | None = Field(
        None, ge=1, le=28, description="Day of the month on which every team is topped up to team_minutes."
    )
    public_url: str = Field(
        "http://localhost:8080", description="Address of the bot's web server as teams and robots reach it."
    )
    web_host: str = Field("127.0.0.1", description="Interface the bot's web server listens on.")
    web_port: int = Field(
        8080, ge=0, le=65535, description="Port of the bot's web server (0: any free port)."
    )
    web_secret: SecretStr | None = Field(
        None,
        description="Key that signs download links (default: random per start, so links die on restart).",
    )
    link_minutes: int = Field(60, ge=1, description="Lifetime of a signed model download link.")
    page_link_minutes: int = Field(
        7 * 24 * 60, ge=1, description="Lifetime of a signed link to a team's pages (jobs, models, datasets)."
    )
    admin_user_ids: list[int] = Field(
        default_factory=list, description="Discord user ids of FieldLens operators (may grant minutes)."
    )
    operator_contact: str = Field(
        "",
        description="How teams reach the operators, shown with error refs and for more minutes "
        "(e.g. '@Ms. Rivera in #fieldlens-help'); default: the operators' Discord mentions.",
    )
    dev_guild_id: int | None = Field(
        None, description="Sync slash commands to this server only (development)."
    )
    allow_private_urls: bool = Field(
        False, description="Let `/dataset upload url:` fetch private and loopback addresses (tests only)."
    )
    url_timeout_seconds: float = Field(
        300.0, gt=0, description="Time limit of a `/dataset upload url:` download."
    )
    job_defaults: dict[str, Any] = Field(
        default_factory=dict,
        description='Training settings of bot-started jobs as JSON, e.g. {"weights": "/data/backbone.h5"}.',
    )
    notify_seconds: float = Field(3.0, gt=0, description="How often the bot updates progress messages.")
    log_level: str = Field("INFO", description="Logging level of every FieldLens process.")
    broker_url: str | None = Field(
        None,
        description="Redis URL of the Celery broker (redis://host:6379/0): jobs then run on remote "
        "`fieldlens worker --broker` machines instead of the embedded worker.",
    )
    store: str | None = Field(
        None,
        description="Blob store shared with remote workers: file:///folder (NFS too) or s3://bucket "
        "(default: file://<home>/store).",
    )
    s3_endpoint_url: str | None = Field(
        None, description="Endpoint of an S3-compatible server for an s3:// store (default: AWS)."
    )

    @property
    def db_path(self) -> Path:
        return self.home / "fieldlens.db"

    @property
    def blob_dir(self) -> Path:
        return self.home / "blobs"

    @property
    def store_url(self) -> str:
        return self.store or (self.home / "store").resolve().as_uri()

    def require_discord_token(self) -> str:
        if self.discord_token is None or not self.discord_token.get_secret_value():
            raise MissingSecret(
                "FIELDLENS_DISCORD_TOKEN is not set. Create a bot in the Discord developer portal "
                "and export its token as FIELDLENS_DISCORD_TOKEN (see the README)."
            )
        return self.discord_token.get_secret_value()

    def operators(self, mentions: bool = True) -> str:
        """Who runs this FieldLens, for "tell {operators} this ref" (Discord mentions only in Discord)."""
        if self.operator_contact:
            return self.operator_contact
        if self.admin_user_ids and mentions:
            return "the FieldLens operators (" + ", ".join(f"<@{i}>" for i in self.admin_user_ids) + ")"
        return "the person who runs this FieldLens (whoever added the bot to your server)"


def load_settings(**overrides: object) -> Settings:
    """Read the settings from the environment; `overrides` win (used by tests and the CLI)."""
    return Settings(**overrides)  # type: ignore[arg-type]
