"""A page per job, model and dataset, and a team dashboard, served by the bot's web server.

    GET /dashboard                             the team's jobs, models and datasets
    GET /jobs/{id}                             state, plan, live charts, predictions slider, results, log
    GET /jobs/{id}/events                      server-sent events from `job_events` (job_stream.py)
    GET /jobs/{id}/samples/{step}.jpg          a checkpoint's predictions picture
    GET /jobs/{id}/log.txt                     the job's log
    GET /models/{id}                           the model card and its downloads per target
    GET /datasets/{id}?label=&split=&page=     counts, lint and a paged grid of the images
    GET /datasets/{id}/images/{image_id}.jpg   a thumbnail with boxes drawn
    GET /static/...                            CSS, the page script and uPlot (MIT, static/vendor/uplot)

Every route but /static needs a signed page link (bot/links.py, checked in access.py): 403 when it
was tampered with or has expired; another team's ids answer 404. Jinja2 templates (templates/),
vendored JavaScript, no build step; every page reads without JavaScript (tables instead of charts).
Pages read the database on the pages' own thread (reader.py), with a storage of its own, never on
the event loop that answers the slash commands; the job page and its streams through one feed per
job that all its open pages share (job_feed.py). Jinja2 renders and thumbnails are drawn in threads.
The model page (a few rows by their keys and the model's manifest) still reads on the loop.
"""

from __future__ import annotations

from aiohttp import web

from bot.links import LinkSigner
from bot.pages import access, templating
from bot.pages.dashboard import dashboard
from bot.pages.dataset_page import THUMBNAILS_KEY, dataset_image, dataset_page
from bot.pages.job_feed import JobFeeds
from bot.pages.job_page import job_log, job_page, job_sample
from bot.pages.job_stream import FEEDS_KEY, job_events, on_shutdown
from bot.pages.model_page import model_page
from bot.pages.reader import PageReader
from bot.pages.thumbnails import Thumbnails
from storage.services import Services


def add_pages(app: web.Application, services: Services, signer: LinkSigner) -> None:
    """Serve the pages from `app`, reading `services` (use them on the app's event loop only) and, on
    the pages' thread, a storage of their own opened with the same settings."""
    app[access.SERVICES_KEY] = services
    app[access.SIGNER_KEY] = signer
    app[access.READER_KEY] = reader = PageReader(services.settings)
    app[FEEDS_KEY] = JobFeeds(reader)
    app[THUMBNAILS_KEY] = Thumbnails()
    app.on_shutdown.append(on_shutdown)
    app.on_cleanup.append(_close_reader)
    templating.setup(app)
    app.router.add_get("/dashboard", dashboard)
    app.router.add_get("/jobs/{job_id}", job_page)
    app.router.add_get("/jobs/{job_id}/events", job_events)
    app.router.add_get(r"/jobs/{job_id}/samples/{step:\d+}.jpg", job_sample)
    app.router.add_get("/jobs/{job_id}/log.txt", job_log)
    app.router.add_get("/models/{model_id}", model_page)
    app.router.add_get("/datasets/{dataset_id}", dataset_page)
    app.router.add_get(r"/datasets/{dataset_id}/images/{image_id:\d+}.jpg", dataset_image)
    app.router.add_static("/static/", templating.STATIC, name="static", append_version=True)


async def _close_reader(app: web.Application) -> None:
    await app[access.READER_KEY].close()
