"""The team pages in a real headless browser (Debian's Chromium) against the real server on
127.0.0.1, while a real worker trains a tiny job: the job page's chart gains points without a
reload, the slider changes the predictions picture, the dataset grid pages and filters, and links
that are expired, tampered with or name another team's ids show no data. And the job log grows on
the page as it is written, without a reload.

Skipped, with the reason, when Chromium or its driver is not installed (CI installs both).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from storage.domain import JobState
from storage.services import Services, open_services
from storage.settings import Settings
from storage.voc.synth import make_voc_zip
from testkit import browser
from testkit.page_server import PageServer
from testkit.tiny import TINY_JOB

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(browser.missing() is not None, reason=str(browser.missing())),
]


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Polls check() until it is truthy. An element that a navigation replaced or has not drawn yet
    counts as "not yet" (a filter submits its form: the page reloads under the check)."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if value := check():
                return value
        except (StaleElementReferenceException, NoSuchElementException):
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@dataclass
class Site:
    services: Services
    server: PageServer
    driver: Any
    job_id: int
    dataset_id: int
    other_job: int

    def open(self, path: str, team: str = "local") -> None:
        self.driver.get(self.server.link(team, path))

    def js(self, script: str) -> Any:
        return self.driver.execute_script(script)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    from trainer.worker import Worker

    settings = Settings(home=tmp_path_factory.mktemp("browser") / "home", heartbeat_seconds=0.5)
    services = open_services(settings)
    dataset = services.datasets.add("local", "shapes", make_voc_zip(images=40, seed=21)).dataset
    services.datasets.add("other-team", "theirs", make_voc_zip(images=6, seed=2))
    other = services.jobs.create("other-team", ["theirs"], steps=20, batch_size=4, max_minutes=5)
    services.jobs.request_stop("other-team", other.id)  # canceled: no worker takes it
    job = services.jobs.create("local", ["shapes"], steps=100, batch_size=8, max_minutes=10, config=TINY_JOB)
    server = PageServer(settings)
    driver = browser.chrome(1280, 900)
    worker = Worker(settings, worker_id="page-worker", poll_seconds=0.2)
    thread = threading.Thread(target=worker.run, kwargs={"max_jobs": 1}, daemon=True)
    thread.start()
    yield Site(services, server, driver, job.id, dataset.id, other.id)
    worker.stop()
    thread.join(120)
    driver.quit()
    server.close()
    services.close()


def test_the_job_page_chart_grows_while_the_job_trains_without_a_reload(site: Site) -> None:
    site.open(f"/jobs/{site.job_id}")
    site.js("window.notReloaded = true;")
    points = "return Number(document.getElementById('loss-chart').dataset.points)"
    first = wait_for(lambda: site.js(points), 240, "the first training-loss point to arrive")
    wait_for(lambda: site.js(points) > first, 120, "more points while the job trains")
    assert site.js("return window.notReloaded") is True  # the points came through the stream
    assert site.js("return document.getElementById('state').textContent") in ("RUNNING", "SUCCEEDED")
    assert site.js("return document.querySelectorAll('#loss-chart canvas').length") == 1
    wait_for(lambda: site.js("return Number(document.getElementById('map-chart').dataset.points)") >= 2, 240,
             "two checkpoints on the mAP chart")  # fmt: skip
    assert site.js("return window.notReloaded") is True


def test_the_slider_changes_the_predictions_picture(site: Site) -> None:
    from selenium.webdriver.common.keys import Keys

    site.open(f"/jobs/{site.job_id}")
    wait_for(lambda: site.js("return Number(document.getElementById('sample-slider').max)") >= 1, 240,
             "pictures of two checkpoints")  # fmt: skip
    image = site.driver.find_element("id", "sample-image")
    newest = image.get_attribute("src")
    slider = site.driver.find_element("id", "sample-slider")
    slider.send_keys(Keys.HOME)  # as a person would: focus the slider and go to the first checkpoint
    wait_for(lambda: image.get_attribute("src") != newest, 10, "the picture to change")
    assert "/samples/20.jpg" in image.get_attribute("src")
    assert site.js("return document.getElementById('sample-step').textContent") == "20"
    wait_for(
        lambda: site.js("return document.getElementById('sample-image').naturalWidth") > 0, 10, "it to load"
    )


def test_the_finished_job_shows_its_results_and_links_its_model(site: Site) -> None:
    wait_for(lambda: site.services.jobs.get("local", site.job_id).state.is_final, 400, "the job to end")
    job = site.services.jobs.get("local", site.job_id)
    assert job.state == JobState.SUCCEEDED, job.error
    site.open(f"/jobs/{site.job_id}")
    text = site.driver.find_element("tag name", "main").text
    assert "How good the model is" in text and "Confusion matrix" in text and f"model {job.model_id}" in text
    site.driver.find_element("link text", f"model {job.model_id}").click()
    wait_for(lambda: "Download" in site.driver.find_element("tag name", "main").text, 10, "the model page")
    assert site.js("return Number(document.getElementById('pr-chart').dataset.points)") > 0


def test_the_dataset_grid_pages_and_filters(site: Site) -> None:
    from selenium.webdriver.support.ui import Select

    site.open(f"/datasets/{site.dataset_id}")
    assert len(site.driver.find_elements("css selector", "#grid li")) == 24
    assert "page 1 of 2" in site.driver.find_element("id", "grid-count").text
    site.driver.find_element("id", "next-page").click()
    wait_for(lambda: "page 2 of 2" in site.driver.find_element("id", "grid-count").text, 10, "page 2")
    assert len(site.driver.find_elements("css selector", "#grid li")) == 16
    Select(site.driver.find_element("name", "split")).select_by_visible_text("val")
    site.driver.find_element("css selector", "form.filters button").click()
    wait_for(lambda: " in val" in site.driver.find_element("id", "grid-count").text, 10, "the filter")
    splits = {e.text for e in site.driver.find_elements("css selector", "#grid .split")}
    assert splits == {"val"}
    images = "Array.from(document.querySelectorAll('#grid img'))"
    loaded = f"return {images}.every(i => i.complete && i.naturalWidth > 0)"
    wait_for(lambda: site.js(loaded), 20, "every thumbnail to load")


def test_expired_tampered_and_other_teams_links_show_no_data(site: Site) -> None:
    site.driver.get(site.server.expired_link("local", f"/jobs/{site.job_id}"))
    assert "invalid or has expired" in site.driver.find_element("tag name", "body").text
    site.driver.get(site.server.link("local", f"/jobs/{site.job_id}").replace("sig=", "sig=f"))
    assert "invalid or has expired" in site.driver.find_element("tag name", "body").text
    site.open(f"/jobs/{site.other_job}")
    assert "No such job in this team" in site.driver.find_element("tag name", "body").text


def test_the_job_log_grows_on_the_page_without_a_reload(tmp_path: Path) -> None:
    from storage.job_folder import JobFolder

    settings = Settings(home=tmp_path / "home")
    services = open_services(settings)
    services.datasets.add("local", "shapes", make_voc_zip(images=8, seed=3))
    job = services.jobs.create("local", ["shapes"], steps=100, batch_size=4, max_minutes=5)
    services.jobs.claim("by-hand")  # running without a worker: the test writes its log
    services.jobs.transition(job.id, JobState.RUNNING, {"device": "CPU"})
    log = JobFolder(services.jobs.get_any(job.id).checkpoint_dir or "").log
    log.parent.mkdir(parents=True)
    log.write_text("2026-01-01 10:00:00,000 INFO job trainer: training on CPU\n")
    server = PageServer(settings)
    driver = browser.chrome(412, 915)
    try:
        driver.get(server.link("local", f"/jobs/{job.id}"))
        driver.execute_script("window.notReloaded = true;")
        text = "return document.getElementById('log').textContent"
        assert "training on CPU" in driver.execute_script(text)
        with log.open("a") as f:
            f.write("step 10 loss 0.42\n")
        wait_for(lambda: "step 10 loss 0.42" in driver.execute_script(text), 20, "the new line on the page")
        assert driver.execute_script("return document.getElementById('log-count').textContent") == "2"
        assert driver.execute_script("return window.notReloaded") is True
    finally:
        driver.quit()
        server.close()
        services.close()
