"""Debian's headless Chromium driven by Selenium, for page tests and screenshots.

Both programs are named by path (/usr/bin/chromium, /usr/bin/chromedriver, or FIELDLENS_TEST_CHROMIUM
and FIELDLENS_TEST_CHROMEDRIVER in tests' environment), so Selenium Manager never looks for, or
downloads, a browser or a driver. Chromium's own network traffic is limited to 127.0.0.1.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

CHROMIUM = Path(os.environ.get("FIELDLENS_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("FIELDLENS_TEST_CHROMEDRIVER", "/usr/bin/chromedriver"))


def missing() -> str | None:
    """Why no browser test can run here (None: they can)."""
    if not CHROMIUM.is_file() or not CHROMEDRIVER.is_file():
        return (
            f"no headless browser: {CHROMIUM} and {CHROMEDRIVER} are needed "
            "(Debian: apt-get install chromium chromium-driver)"
        )
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    return None


def chrome(width: int = 1280, height: int = 900) -> Any:
    """A headless Chromium window of `width` x `height` CSS pixels."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        f"--window-size={width},{height}",
    ):
        options.add_argument(flag)
    service = Service(executable_path=str(CHROMEDRIVER), log_output=os.devnull)
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_window_size(width, height)
    return driver


def full_page_png(driver: Any, path: Path, width: int, max_height: int = 4000) -> None:
    """A screenshot of the whole page at `width` CSS pixels (at most `max_height` tall)."""
    # Lazy images below the window would be photographed blank: load them all first.
    driver.execute_script("document.querySelectorAll('img').forEach(i => { i.loading = 'eager'; })")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not driver.execute_script(
        "return Array.from(document.images).every(i => i.complete)"
    ):
        time.sleep(0.1)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {
            "width": width,
            "height": min(int(height), max_height),
            "deviceScaleFactor": 1,
            "mobile": width < 600,
        },
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
