"""A real browser for the suite: Debian's headless Chromium driven by selenium through the system
chromedriver (nothing downloaded). Missing, the test that needs it is skipped and says how to
install it, except in CI (CI=true, which .ci/run sets and which installs Chromium), where that is
a failure, as for the container test."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

INSTALL = "apt-get install -y --no-install-recommends chromium chromium-driver"


def _program(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    path = Path("/usr/bin") / name
    return str(path) if path.exists() else None


def unavailable(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true, and the browser test cannot run: {reason}")
    pytest.skip(f"browser test skipped: {reason}")


def chromium(profile: Path):
    """A headless Chromium (a selenium WebDriver) keeping every console message, or skip/fail."""
    browser, driver = _program("chromium"), _program("chromedriver")
    if browser is None or driver is None:
        unavailable(f"no {'chromium' if browser is None else 'chromedriver'} on this machine ({INSTALL})")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        unavailable("selenium is not installed (pip install -e '.[dev]')")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in a container
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-extensions",
        "--window-size=1200,900",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=options)


def severe_console_messages(driver) -> list[str]:
    """The console messages logged at SEVERE (JavaScript errors, failed resources) since the last call."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
