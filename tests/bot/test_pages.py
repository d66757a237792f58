"""The team pages with plain HTTP requests against the real server on 127.0.0.1: every page, the job
stream, pictures, downloads, and the link rules (403 tampered or expired, 404 another team's ids)."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image

from storage.domain import JobState
from storage.job_folder import JobFolder
from storage.model_folder import ModelFolder
from storage.services import Services
from storage.voc.synth import make_voc_zip
from testkit.page_server import PageServer
from tests.model_folders import write_model_folder

A, B = "team-a", "team-b"


@dataclasses.dataclass
class Pages:
    server: PageServer
    services: Services
    done_job: int
    running_job: int
    model: int
    dataset: int
    other_job: int
    other_model: int
    other_dataset: int

    def get(self, path: str, team: str = A, headers: dict[str, str] | None = None) -> tuple[int, str, bytes]:
        if path.startswith("http"):
            url = path
        else:
            path, _, params = path.partition("?")
            url = self.server.link(team, path) + (f"&{params}" if params else "")
        request = urllib.request.Request(url, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=10) as r:
                return r.status, r.headers.get("Content-Type", ""), r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("Content-Type", ""), e.read()

    def html(self, path: str) -> str:
        status, kind, body = self.get(path)
        assert status == 200 and kind.startswith("text/html"), (status, body[:300])
        return body.decode()


def _checkpoint(services: Services, job_id: int, step: int, map50: float) -> None:
    data = {"step": step, "map50": map50, "map50_95": map50 / 2, "val_loss": 1.0 / step, "loss": 2.0 / step,
            "per_class_ap50": {"circle": map50, "square": map50 / 3, "triangle": 0.0}}  # fmt: skip
    services.jobs.progress(job_id, "checkpoint", data, steps_completed=step)


def _job(services: Services, team: str, dataset: str, worker: str) -> int:
    job = services.jobs.create(team, [dataset], steps=100, batch_size=8, max_minutes=5)
    claimed = services.jobs.claim(worker)
    assert claimed is not None and claimed.id == job.id
    services.jobs.transition(job.id, JobState.RUNNING, {"device": "CPU"})
    for step in (10, 20, 30):
        services.jobs.progress(job.id, "progress", {"step": step, "steps": 100, "loss": 3.0 / step,
                               "images_per_second": 20.0, "eta_seconds": 60.0})  # fmt: skip
    _checkpoint(services, job.id, 20, 0.4)
    return job.id


def _model(services: Services, team: str, path: Path, job_id: int) -> int:
    folder = write_model_folder(path)
    manifest = folder.manifest()
    curve = {"recall": [0.0, 0.5, 1.0], "precision": [1.0, 0.9, 0.4], "score": [0.9, 0.6, 0.1]}
    figures = {**manifest.metrics.by_model["int8"], "precision": 0.8, "recall": 0.7, "ms_per_image": 3.5,
               "score_threshold": 0.3, "pr_curves": {label: curve for label in manifest.labels},
               "confusion": {"labels": [*manifest.labels, "background/missed"],
                             "matrix": [[5, 0, 0, 1], [0, 4, 1, 0], [0, 0, 6, 0], [1, 0, 0, 0]]}}  # fmt: skip
    metrics = dataclasses.replace(manifest.metrics, by_model={"float": figures, "int8": figures})
    folder.write_manifest(dataclasses.replace(manifest, metrics=metrics))
    return services.models.register(team, path, f"shapes from job {job_id}", job_id=job_id).id


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pages]:
    from storage.services import open_services
    from storage.settings import Settings

    root = tmp_path_factory.mktemp("pages")
    settings = Settings(home=root / "home")
    services = open_services(settings)
    dataset = services.datasets.add(A, "shapes", make_voc_zip(images=40, seed=21)).dataset.id
    other_dataset = services.datasets.add(B, "other", make_voc_zip(images=6, seed=5)).dataset.id
    done = _job(services, A, "shapes", "w1")
    _checkpoint(services, done, 40, 0.6)
    model = _model(services, A, root / "model-a", done)
    services.jobs.finish(done, JobState.SUCCEEDED, {"reason": "completed", "model_id": model},
                         model_id=model, steps_completed=40, training_seconds=75.0)  # fmt: skip
    folder = JobFolder(services.jobs.get_any(done).checkpoint_dir or "")
    folder.samples.mkdir(parents=True)
    for step, colour in ((20, (200, 0, 0)), (40, (0, 200, 0))):
        Image.new("RGB", (388, 196), colour).save(folder.sample(step), "JPEG")
    folder.log.write_text(  # as the training process would leave it
        "--- job 1 ---\n2026-01-01 10:00:00,000 INFO job-1 trainer: training on CPU\n"
        "2026-01-01 10:00:01,000 WARNING job-1 trainer.data: 2 images could not be decoded\n"
        "W0000 00:00:1.0 cuda: no GPU found\nstep 10 loss 0.3\n"
    )
    running = _job(services, A, "shapes", "w2")
    other_job = _job(services, B, "other", "w3")
    other_model = _model(services, B, root / "model-b", other_job)
    server = PageServer(settings)
    yield Pages(server, services, done, running, model, dataset, other_job, other_model, other_dataset)
    server.close()
    services.close()


def test_dashboard_links_every_job_model_and_dataset_of_the_team_only(pages: Pages) -> None:
    html = pages.html("/dashboard")
    for path in (f"/jobs/{pages.done_job}?", f"/jobs/{pages.running_job}?", f"/models/{pages.model}?",
                 f"/datasets/{pages.dataset}?"):  # fmt: skip
        assert path in html
    assert f"/jobs/{pages.other_job}?" not in html and "other" not in html.split("<main>")[1]


def test_job_page_shows_plan_checkpoints_pictures_results_and_warnings_first(pages: Pages) -> None:
    html = pages.html(f"/jobs/{pages.done_job}")
    assert "Job 1" in html and "SUCCEEDED" in html and "shapes" in html
    assert html.index("Warnings in the log") < html.index("<h2>Log</h2>")
    assert "2 images could not be decoded" in html and "no GPU found" in html
    assert "0.600" in html and "checkpoint-table" in html  # the table a page without JavaScript shows
    assert f"/jobs/{pages.done_job}/samples/40.jpg?" in html
    assert "Confusion matrix" in html and "score ≥ 0.60" in html  # the best-F1 point of the curve
    data = json.loads(html.split('id="page-data">')[1].split("</script>")[0])
    kinds = [e["kind"] for e in data["events"]]
    assert kinds.count("checkpoint") == 2 and kinds.count("progress") == 3
    assert data["final"] is True and set(data["curves"]) == {"circle", "square", "triangle"}
    status, kind, picture = pages.get(f"/jobs/{pages.done_job}/samples/20.jpg")
    assert status == 200 and kind == "image/jpeg" and Image.open(io.BytesIO(picture)).size == (388, 196)
    assert pages.get(f"/jobs/{pages.done_job}/samples/30.jpg")[0] == 404
    status, kind, log = pages.get(f"/jobs/{pages.done_job}/log.txt")
    assert status == 200 and kind.startswith("text/plain") and b"step 10 loss 0.3" in log


def test_a_job_that_has_not_written_anything_yet_still_has_a_page(pages: Pages) -> None:
    html = pages.html(f"/jobs/{pages.running_job}")
    assert "RUNNING" in html and "No log yet" in html and "Pictures appear at each checkpoint" in html
    assert "not yet" in html  # no model


def test_the_stream_sends_new_job_events_as_they_are_written(pages: Pages) -> None:
    url = pages.server.link(A, f"/jobs/{pages.running_job}/events")
    received: list[dict] = []

    def read() -> None:
        with urllib.request.urlopen(url + "&after=0", timeout=30) as stream:
            for line in stream:
                if line.startswith(b"data: ") and line.strip() != b"data: {}":
                    received.append(json.loads(line[6:]))
                if len(received) >= 8:
                    return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + 10
    while len(received) < 7 and time.monotonic() < deadline:  # the history first: 3 states, 4 more
        time.sleep(0.05)
    kinds = [e["event"]["kind"] for e in received]
    assert kinds == ["state", "state", "state", "progress", "progress", "progress", "checkpoint"]
    pages.services.jobs.progress(pages.running_job, "progress", {"step": 55, "steps": 100, "loss": 0.05})
    reader.join(10)
    assert received[-1]["event"] == {
        "id": received[-1]["event"]["id"],
        "kind": "progress",
        "step": 55,
        "loss": 0.05,
    }
    assert received[-1]["job"]["state"] == "RUNNING" and received[-1]["job"]["steps"] == 100


def page_data(html: str) -> dict:
    return json.loads(html.split('id="page-data">')[1].split("</script>")[0])


class Stream:
    """A job's event stream read on a thread: its `job` and `log` events as they come."""

    def __init__(self, url: str) -> None:
        self.events: list[tuple[str, dict]] = []
        self.thread = threading.Thread(target=self._read, args=(url,), daemon=True)
        self.thread.start()

    def _read(self, url: str) -> None:
        name = ""
        with urllib.request.urlopen(url, timeout=30) as stream:
            for line in stream:
                if line.startswith(b"event: "):
                    name = line[7:].strip().decode()
                elif line.startswith(b"data: "):
                    self.events.append((name, json.loads(line[6:])))
                    if name == "end" or len(self.events) > 100:
                        return

    def wait(self, check: Callable[[list[tuple[str, dict]]], object], what: str, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while not check(self.events):
            assert time.monotonic() < deadline, f"timed out waiting for {what}: {self.events}"
            time.sleep(0.05)


def test_the_job_log_goes_on_live_from_where_the_page_left_it(pages: Pages) -> None:
    job_id = _job(pages.services, A, "shapes", "w-log")
    log = JobFolder(pages.services.jobs.get_any(job_id).checkpoint_dir or "").log
    log.parent.mkdir(parents=True)
    log.write_text("2026-01-01 10:00:00,000 INFO job trainer: training on CPU\nstep 10 loss 0.3\n")
    html = pages.html(f"/jobs/{job_id}")
    data = page_data(html)
    assert "step 10 loss 0.3" in html and data["log_at"] == log.stat().st_size
    stream = Stream(f"{pages.server.url}{data['stream']}&after={data['after']}&log={data['log_at']}")
    with log.open("a") as f:
        f.write("step 20 loss 0.2\nstep 30 lo")  # the trainer is in the middle of a line
    stream.wait(lambda events: any(name == "log" for name, _ in events), "the new lines")
    with log.open("a") as f:
        f.write("ss 0.1\n")
    stream.wait(lambda events: sum(name == "log" for name, _ in events) == 2, "the rest of the line")
    sent = [payload for name, payload in stream.events if name == "log"]
    assert [p["lines"] for p in sent] == [["step 20 loss 0.2"], ["step 30 loss 0.1"]]
    assert sent[-1]["at"] == log.stat().st_size
    assert not [name for name, _ in stream.events if name == "job"]  # the page had every event already
    pages.services.jobs.request_stop(A, job_id)
    pages.services.jobs.finish(job_id, JobState.STOPPED, {"reason": "stop_requested"})
    stream.wait(lambda events: events and events[-1][0] == "end", "the end of the stream")


def test_every_stream_of_a_job_shares_one_read_a_second_off_the_event_loop(
    pages: Pages, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.pages import job_feed

    job_id = _job(pages.services, A, "shapes", "w-shared")
    reads: list[str] = []

    def counted(services: Services, read_id: int, *args: object) -> job_feed.Reading:
        if read_id == job_id:
            reads.append(threading.current_thread().name)
        return read_job(services, read_id, *args)

    read_job = job_feed.read_job
    monkeypatch.setattr(job_feed, "read_job", counted)
    url = pages.server.link(A, f"/jobs/{job_id}/events")
    streams = [Stream(f"{url}&after=0") for _ in range(5)]
    for stream in streams:  # each has the job's history: 3 states, 3 progress, 1 checkpoint
        stream.wait(lambda events: len(events) >= 7, "the history")
    before = len(reads)
    time.sleep(3.5)
    assert len(reads) - before <= 4  # one read a second for all five (each polling: about 17)
    pages.services.jobs.progress(job_id, "progress", {"step": 60, "steps": 100, "loss": 0.04})
    for stream in streams:
        stream.wait(lambda events: events[-1][1]["event"].get("step") == 60, "the new event")
    assert reads and set(reads) == {"fieldlens-pages_0"}  # the pages' thread, not the event loop
    pages.services.jobs.request_stop(A, job_id)
    pages.services.jobs.finish(job_id, JobState.STOPPED, {"reason": "stop_requested"})


def test_the_stream_of_an_ended_job_ends(pages: Pages) -> None:
    status, kind, body = pages.get(f"/jobs/{pages.done_job}/events")
    assert status == 200 and kind.startswith("text/event-stream")
    assert body.rstrip().endswith(b"event: end\ndata: {}") and b'"SUCCEEDED"' in body


def test_model_page_card_and_downloads_per_target(pages: Pages) -> None:
    html = pages.html(f"/models/{pages.model}")
    assert f"Model {pages.model}" in html and f"/jobs/{pages.done_job}?" in html and "shapes" in html
    assert "Limelight" in html and "Raspberry Pi" in html and "fieldlens-edge pull --server" in html
    assert "No robot has pulled this model yet" in html and "Confusion matrix" in html
    link = html.split('href="/download/')[1].split('"')[0].replace("&amp;", "&")
    status, _, body = pages.get(f"{pages.server.url}/download/{link}")
    folder = ModelFolder(pages.services.models.get(A, pages.model).path)
    assert status == 200 and body == folder.int8_model.read_bytes()


def test_model_page_lists_the_robots_that_pulled_it(pages: Pages, tmp_path: Path) -> None:
    from edge.pull import pull

    token = pages.services.models.create_edge_token(B, "practice bot")
    pull(pages.server.url, token, tmp_path / "robot")
    html = pages.server and pages.get(f"/models/{pages.other_model}", team=B)[2].decode()
    assert "No robot has pulled" not in html and "127.0.0.1" in html and "practice bot" in html


def test_dataset_page_counts_lint_and_a_grid_that_pages_and_filters(pages: Pages) -> None:
    html = pages.html(f"/datasets/{pages.dataset}")
    assert "Dataset shapes" in html and 'id="counts"' in html and "page 1 of 2" in html
    assert html.count('<li class="') == 24 and "near copy of 1 other (group 1)" in html  # consecutive frames
    second = pages.html(f"/datasets/{pages.dataset}?page=2")
    assert second.count('<li class="') == 16 and "previous-page" in second and "next-page" not in second
    dataset = pages.services.datasets.get_by_id(A, pages.dataset)
    label = sorted(dataset.label_counts)[0]
    only_val = pages.html(f"/datasets/{pages.dataset}?split=val&label={label}")
    shown = only_val.count('<li class="')
    assert 0 < shown < 24 and f"with {label} in val" in only_val and "split-train" not in only_val
    thumb = only_val.split('<img loading="lazy" src="')[1].split('"')[0].replace("&amp;", "&")
    status, kind, body = pages.get(f"{pages.server.url}{thumb}")
    assert status == 200 and kind == "image/jpeg" and max(Image.open(io.BytesIO(body)).size) <= 320


@pytest.mark.parametrize(
    "path",
    ["/dashboard", "/jobs/{done_job}", "/jobs/{done_job}/events", "/models/{model}", "/datasets/{dataset}"],
)
def test_tampered_or_expired_links_get_403(pages: Pages, path: str) -> None:
    path = path.format(**vars(pages))
    good = pages.server.link(A, path)
    assert pages.get(good.replace("sig=", "sig=0"))[0] == 403
    assert pages.get(good.replace("team=team-a", "team=team-b"))[0] == 403
    assert pages.get(good.split("?")[0])[0] == 403
    status, _, body = pages.get(pages.server.expired_link(A, path))
    assert status == 403 and b"/fieldlens dashboard" in body


@pytest.mark.parametrize(
    "path",
    ["/jobs/{other_job}", "/jobs/{other_job}/events", "/jobs/{other_job}/log.txt", "/models/{other_model}",
     "/datasets/{other_dataset}", "/datasets/{other_dataset}/images/1.jpg", "/jobs/999", "/jobs/x"],
)  # fmt: skip
def test_another_teams_ids_get_404(pages: Pages, path: str) -> None:
    assert pages.get(path.format(**vars(pages)))[0] == 404


def test_an_image_of_another_dataset_gets_404(pages: Pages) -> None:
    other_image = pages.services.datasets.images(pages.other_dataset)[0].id
    assert pages.get(f"/datasets/{pages.dataset}/images/{other_image}.jpg")[0] == 404


def test_the_chart_library_is_served_with_its_licence(pages: Pages) -> None:
    html = pages.html(f"/jobs/{pages.done_job}")
    script = html.split('<script src="')[1].split('"')[0]
    status, kind, body = pages.get(f"{pages.server.url}{script}")
    assert (
        status == 200 and "javascript" in kind and body.startswith(b"/*! https://github.com/leeoniya/uPlot")
    )
    status, _, licence = pages.get(f"{pages.server.url}/static/vendor/uplot/LICENSE")
    assert status == 200 and b"MIT License" in licence


def test_the_access_log_leaves_out_the_signed_query(pages: Pages, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    pages.html("/dashboard")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not any("/dashboard" in r.getMessage() for r in caplog.records):
        time.sleep(0.05)  # the line is written once the answer has gone
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert any(" GET /dashboard 200 " in line for line in lines) and not any("sig=" in line for line in lines)


@pytest.mark.parametrize(
    "data",
    [
        {"labels": ["a", "b", "background/missed"], "matrix": [[3, 0, 1], [0, 2, 0], [1, 0, 0]]},
        {"rows": ["a", "b", "background"], "columns": ["a", "b", "missed"], "split": "test",
         "matrix": [[3, 0, 1], [0, 2, 0], [1, 0, 0]]},
    ],
)  # fmt: skip
def test_both_confusion_matrix_layouts_read_the_same(data: dict) -> None:
    from bot.pages.results import _confusion

    shown = _confusion(data)
    assert shown["columns"] == ["a", "b", "missed"]
    assert [name for name, _, _ in shown["rows"]] == ["a", "b", "background"]
    assert shown["rows"][0][1:] == ([3, 0, 1], 4)


@pytest.mark.parametrize(
    ("start", "limit", "lines", "at"),
    [
        (0, 1000, ["one", "two"], 8),  # whole lines only: "thr" is still being written
        (4, 1000, ["two"], 8),
        (8, 1000, [], 8),
        (0, 8, ["two"], 8),  # far behind: only the lines of the last `limit` bytes
        (50, 1000, ["one", "two"], 8),  # past the end: the file was written anew
    ],
)
def test_log_lines_are_read_whole_from_where_a_stream_is(
    tmp_path: Path, start: int, limit: int, lines: list[str], at: int
) -> None:
    from bot.pages.job_feed import read_lines

    log = tmp_path / "job.log"
    log.write_text("one\ntwo\nthr")
    assert read_lines(log, start, limit) == (lines, at)
    assert read_lines(tmp_path / "missing.log", 0) == ([], 0)
