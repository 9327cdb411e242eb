"""A headless Chromium for browser tests: Debian's `chromium` driven through its own
`chromedriver` by Selenium, both found on this machine.

    found = find_browser()                      # None: skip with `missing_reason()`
    with chromium(found, (1280, 1600), log) as driver:
        driver.get(url)
        save_full_page(driver, path)            # the whole page, not only the viewport
        page_errors(driver)                     # what the page logged as SEVERE

Nothing is downloaded: given the driver's path, Selenium does not run Selenium Manager, and the
browser is the one the driver came with (Debian ships both at one version).
"""

from __future__ import annotations

import base64
import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service as ChromeService
from selenium.webdriver.chrome.webdriver import WebDriver

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
DRIVERS = ("chromedriver",)
#: where Debian puts them, for a PATH without /usr/bin (a minimal CI environment)
FALLBACKS = {"browser": "/usr/bin/chromium", "driver": "/usr/bin/chromedriver"}
INSTALL = "apt-get install chromium chromium-driver"


@dataclass(frozen=True)
class Browser:
    binary: str
    driver: str


def _first(names: tuple[str, ...], fallback: str) -> str | None:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return fallback if Path(fallback).is_file() else None


def find_browser() -> Browser | None:
    """Chromium (or Chrome) and a chromedriver, or None when either is missing."""
    binary = _first(BROWSERS, FALLBACKS["browser"])
    driver = _first(DRIVERS, FALLBACKS["driver"])
    return Browser(binary, driver) if binary and driver else None


def missing_reason() -> str:
    """Why `find_browser()` found nothing, and how to install what is missing."""
    binary = _first(BROWSERS, FALLBACKS["browser"])
    what = "ChromeDriver" if binary else "Chromium"
    if not binary and not _first(DRIVERS, FALLBACKS["driver"]):
        what = "Chromium and ChromeDriver"
    return (
        f"no {what} on this machine (looked for {', '.join(BROWSERS + DRIVERS)} on the PATH): "
        f"install them with `{INSTALL}` (.ci/run does when they are missing)"
    )


@contextlib.contextmanager
def chromium(found: Browser, size: tuple[int, int], log_path: Path) -> Iterator[WebDriver]:
    """A headless Chromium with a `size` viewport, its driver logging to `log_path`; quit after."""
    options = webdriver.ChromeOptions()
    options.binary_location = found.binary
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in CI: Chromium's sandbox refuses to run as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        "--lang=en-US",
        f"--window-size={size[0]},{size[1]}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = ChromeService(executable_path=found.driver, log_output=str(log_path))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        driver.set_page_load_timeout(30)
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": False},
        )
        yield driver
    finally:
        driver.quit()


def save_full_page(driver: WebDriver, path: Path) -> tuple[int, int]:
    """A PNG of the whole page at `path` (beyond the viewport); its width and height."""
    width, height = driver.execute_script(
        "const e = document.documentElement;"
        "return [Math.max(e.scrollWidth, window.innerWidth), e.scrollHeight];"
    )
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
        },
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))
    return int(width), int(height)


def page_errors(driver: WebDriver, ignore: tuple[str, ...] = ()) -> list[str]:
    """The SEVERE lines of the browser's console since the last call (a blocked script or
    stylesheet, a CSP violation, a script error), minus those naming anything in `ignore`."""
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if entry.get("level") == "SEVERE" and not any(part in entry["message"] for part in ignore)
    ]
