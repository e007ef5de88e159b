"""Debian's headless Chromium, driven by selenium through Debian's chromedriver (``scripts/setup.sh test``
installs both): the real browser of the web page and NEST Desktop tests."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


def start_chromium(profile: Path) -> Any:
    """A headless Chromium with a fresh profile in ``profile`` (its console log kept); quit it after use."""
    webdriver = pytest.importorskip("selenium.webdriver")
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.fail("the browser tests need Debian's chromium and chromium-driver: run `scripts/setup.sh test`")
    os.environ["SE_OFFLINE"] = "true"  # selenium's driver manager never downloads: Debian's driver is given
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # nothing leaves this machine: a page that asks for another host (web fonts) gets "not found"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1800",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
                "--disable-gpu", "--no-first-run", "--disable-extensions", "--disable-background-networking",
                f"--user-data-dir={profile}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    return driver
