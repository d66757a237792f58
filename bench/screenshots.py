"""Screenshots of the job, model and dataset pages at phone and laptop widths, for the README.

    python -m bench.screenshots [--out docs/screenshots] [--steps 300]

Trains a tiny job on a synthetic dataset with a real worker, serves the pages on 127.0.0.1 and
photographs them in Debian's headless Chromium (testkit/browser.py). The PNGs are reduced to 256
colours (and scaled down if need be) so that each stays under 200 KB.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

from PIL import Image

from storage.services import open_services
from storage.settings import Settings
from storage.voc.synth import make_voc_zip
from testkit import browser
from testkit.page_server import PageServer
from testkit.tiny import TINY_JOB

WIDTHS = {"phone": 390, "laptop": 1280}
MAX_BYTES = 200_000


def shrink(path: Path) -> int:
    """Re-save `path` in 256 colours, scaled down until it is under MAX_BYTES; returns its size."""
    original = Image.open(path).convert("RGB")
    scale = 1.0
    while True:
        img = (
            original
            if scale == 1.0
            else original.resize((round(original.width * scale), round(original.height * scale)))
        )
        img.quantize(256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
        if path.stat().st_size < MAX_BYTES or scale < 0.3:
            return path.stat().st_size
        scale *= 0.85


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    if (reason := browser.missing()) is not None:
        raise SystemExit(reason)
    from trainer.worker import Worker

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=Path(tmp) / "home", log_level="WARNING")
        services = open_services(settings)
        dataset = services.datasets.add("local", "shapes", make_voc_zip(images=80, seed=7)).dataset
        config = {**TINY_JOB, "checkpoint_every": 50}
        job = services.jobs.create(
            "local", ["shapes"], steps=args.steps, batch_size=16, max_minutes=20, description="screenshots",
            config=config,
        )  # fmt: skip
        worker = Worker(settings, worker_id="screenshots", poll_seconds=0.2)
        thread = threading.Thread(target=worker.run, kwargs={"max_jobs": 1}, daemon=True)
        thread.start()
        started = time.monotonic()
        while not services.jobs.get("local", job.id).state.is_final:
            time.sleep(1)
        thread.join(60)
        done = services.jobs.get("local", job.id)
        print(f"job {done.id} {done.state} in {time.monotonic() - started:.0f} s")
        server = PageServer(settings)
        pages = {
            "job": f"/jobs/{job.id}",
            "model": f"/models/{done.model_id}",
            "dataset": f"/datasets/{dataset.id}",
        }
        try:
            for device, width in WIDTHS.items():
                driver = browser.chrome(width, 900)
                try:
                    for name, path in pages.items():
                        driver.get(server.link("local", path))
                        time.sleep(1.5)  # charts and thumbnails
                        out = args.out / f"{name}-{device}.png"
                        browser.full_page_png(
                            driver, out, width, max_height=3200 if device == "phone" else 2600
                        )
                        print(f"{out}: {shrink(out) / 1000:.0f} KB")
                finally:
                    driver.quit()
        finally:
            server.close()
            services.close()


if __name__ == "__main__":
    main()
