"""`fieldlens train logs N` (and the old name `job logs`): what a job's training process printed,
warnings first."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from fieldlens.cli import cli
from storage.job_folder import JobFolder
from storage.services import open_services
from storage.settings import Settings
from storage.voc.synth import make_voc_zip


@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"


def fieldlens(home, *args: str):
    return CliRunner().invoke(cli, ["--home", str(home), *args], catch_exceptions=False)


def _job_with_log(home, log: str | None) -> int:
    services = open_services(Settings(home=home))
    services.datasets.add("local", "shapes", make_voc_zip(images=12, seed=1))
    job = services.jobs.create("local", ["shapes"], steps=20, batch_size=4, max_minutes=5)
    if log is not None:
        folder = JobFolder(job.checkpoint_dir or "")
        folder.path.mkdir(parents=True)
        folder.log.write_text(log)
    services.close()
    return job.id


@pytest.mark.parametrize("group", ["train", "job"])
def test_logs_put_the_warnings_first(home, group: str) -> None:
    job_id = _job_with_log(
        home, "--- start ---\n2026-01-01 10:00:00,000 WARNING job-1 x: 3 images skipped\nstep 10 loss 0.5\n"
    )
    result = CliRunner().invoke(
        cli, ["--home", str(home), group, "logs", str(job_id)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert (
        out.index("Warnings (1):") < out.index("3 images skipped") < out.index("Log:") < out.index("step 10")
    )


def test_logs_of_a_job_that_has_not_started_say_so_and_json_has_the_lines(home) -> None:
    job_id = _job_with_log(home, None)
    result = CliRunner().invoke(
        cli, ["--home", str(home), "train", "logs", str(job_id)], catch_exceptions=False
    )
    assert result.exit_code == 0 and "No log yet" in result.output
    result = CliRunner().invoke(cli, ["--home", str(home), "train", "logs", str(job_id), "--json"])
    assert json.loads(result.output)["lines"] == []
