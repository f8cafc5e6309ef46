"""End to end in a real browser: the line view follows a line while it provisions.

``provkit server`` (its HTTP app, in-process) runs on a registry; a farm of virtual
devices is provisioned in the background, batch after batch; headless Chromium keeps the
overview open and sees its counters and chart change without the page reloading; then
it finds a device from the search box and opens its page.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from provkit.line.farm import DeviceFarm
from provkit.server import ServerThread
from support.browser import chromium

from ..conftest import World
from .conftest import run_batch

pytestmark = pytest.mark.integration

BATCHES = 6
PER_BATCH = 5


def _line_in_background(home: Path, registry_url: str, farm: DeviceFarm, out: Path) -> threading.Thread:
    addresses = farm.addresses()

    def work() -> None:
        for n in range(BATCHES):
            time.sleep(1.5)  # a pause between batches, as between trays on a line
            chunk = addresses[n * PER_BATCH : (n + 1) * PER_BATCH]
            run_batch(home, registry_url, out / f"batch-{n}", chunk, n * PER_BATCH)

    thread = threading.Thread(target=work, name="line", daemon=True)
    thread.start()
    return thread


def test_the_page_follows_the_line_and_finds_a_device(line_home: Path, world: World, tmp_path: Path) -> None:
    """Counters and chart update live while batches run; search opens a device's attempts."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    total = BATCHES * PER_BATCH
    farm = DeviceFarm(total).start()
    try:
        with ServerThread(world.config(http_port=0)) as server, chromium(tmp_path / "profile") as browser:
            assert server.ports is not None and server.ports.http
            base = f"http://127.0.0.1:{server.ports.http}"
            browser.get(f"{base}/line?refresh=1")
            browser.execute_script("window.lineMarker = 'same page';")

            def figure() -> int:
                return int(browser.find_element(By.CSS_SELECTOR, '[data-field="provisioned_window"]').text)

            def charted() -> int:
                return int(browser.find_element(By.CSS_SELECTOR, "svg.chart").get_attribute("data-total"))

            assert figure() == 0 and charted() == 0
            seen_figures, seen_chart = {figure()}, {charted()}
            line = _line_in_background(line_home, world.registry_url, farm, tmp_path)
            deadline = time.monotonic() + 120
            while (line.is_alive() or figure() < total) and time.monotonic() < deadline:
                try:
                    seen_figures.add(figure())
                    seen_chart.add(charted())
                except Exception:  # the live part is being swapped in; read it again
                    pass
                time.sleep(0.2)
            line.join(timeout=5)
            assert not line.is_alive()
            WebDriverWait(browser, 20).until(lambda _: figure() == total and charted() == total)
            assert browser.execute_script("return window.lineMarker") == "same page"  # never reloaded
            # Values in between were shown: the page followed the line, not only its end.
            assert len(seen_figures) >= 3 and len(seen_chart) >= 3, (seen_figures, seen_chart)
            assert sorted(seen_figures)[0] == 0 and max(seen_figures) <= total
            batches = browser.find_elements(By.CSS_SELECTOR, "table.batches tbody tr")
            assert len(batches) == BATCHES
            browser.save_screenshot(str(tmp_path / "line-view.png"))
            assert (tmp_path / "line-view.png").read_bytes().startswith(b"\x89PNG")

            search = browser.find_element(By.ID, "find")
            search.send_keys("sn-0012", Keys.ENTER)
            WebDriverWait(browser, 20).until(lambda b: "/line/device?endpoint=ep-0012" in b.current_url)
            rows = browser.find_elements(By.CSS_SELECTOR, "#attempts tbody tr")
            assert len(rows) == 1 and "verified" in rows[0].text
            assert "The Factory process succeeded" in rows[0].text
            subject = browser.find_element(By.CSS_SELECTOR, '[data-field="subject"]').text
            assert subject.startswith("CN=ep-0012")
    finally:
        farm.close()
