"""A real headless Chromium (Debian's, driven by Selenium) for the line view's browser tests.

Debian's ``chromium`` and ``chromium-driver`` packages are used as installed
(``/usr/bin/chromium``, ``/usr/bin/chromedriver``): nothing is downloaded. They are
required (a missing one fails the test) when ``CI`` or ``PROVKIT_TEST_POSTGRES_URL`` is
set, as in CI (``.ci/run`` installs them) and the team's checks; elsewhere the tests skip
with the command that installs them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL = "apt-get install chromium chromium-driver"


def _required() -> bool:
    return bool(os.environ.get("CI") or os.environ.get("PROVKIT_TEST_POSTGRES_URL"))


def need_chromium() -> None:
    """Skip (or, when required, fail) unless Chromium and its driver are installed."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if missing:
        message = f"Chromium for the browser tests is missing ({', '.join(missing)}): {INSTALL}"
        if _required():
            pytest.fail(message)
        pytest.skip(message)


@contextmanager
def chromium(profile: Path, *, width: int = 1920, height: int = 1080) -> Iterator[Any]:
    """A headless Chromium WebDriver with a throw-away profile in ``profile``."""
    need_chromium()
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",  # tests run as root in CI containers
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--window-size={width},{height}",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(argument)
    service = webdriver.ChromeService(executable_path=str(CHROMEDRIVER))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
