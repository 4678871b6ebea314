"""The analytics section of the page in real headless Chromium: a zone typed in, a line drawn by clicking on
the video, live counts, the event log and track IDs in the detection table; a screenshot for a person to look at
(artifacts/ui/analytics.png). The app, browser and page fixtures are test_ui.py's."""

from __future__ import annotations

import re

import pytest
from test_ui import ARTIFACTS, _wait_frames, _wait_text, app_url, browser, fake_camera, page, ui_models_dir  # noqa: F401

pytestmark = [pytest.mark.ui, pytest.mark.slow]

TABLE_ZONE = "0.45,0.8; 0.7,0.8; 0.7,0.96; 0.45,0.96"  # the floor in front of the table, where people stand


def _wait_value(pg, selector: str, pattern: str, timeout: float = 20.0) -> str:
    """Wait until an input's value (not its label text) matches."""
    value = ""
    for _ in range(int(timeout / 0.2)):
        value = pg.input_value(selector)
        if re.search(pattern, value):
            return value
        pg.wait_for_timeout(200)
    pytest.fail(f"{selector} value never matched {pattern!r}; last value: {value!r}")


def test_zone_line_counts_events_and_track_ids(page):  # noqa: F811
    page.click("#start")
    _wait_frames(page, n=2)
    # a zone from typed coordinates
    page.fill("#region-name input, #region-name textarea", "table")
    page.fill("#points textarea, #points input", TABLE_ZONE)
    page.fill("#region-classes input, #region-classes textarea", "person")
    page.click("#add-region")
    _wait_text(page, "#geometry", r"zone \*?\*?table\*?\*? \(person\)")
    page.fill("#region-classes input, #region-classes textarea", "")
    # a line drawn by clicking twice on the video (a third of the way across, top to bottom)
    page.get_by_label("line", exact=True).check()
    img = page.locator("#output img")
    box = img.bounding_box()
    nat = img.evaluate("i => [i.naturalWidth, i.naturalHeight]")
    assert box is not None and nat[0] > 0
    scale = min(box["width"] / nat[0], box["height"] / nat[1], 1.0)  # the frame is centred, not stretched
    left, top = (box["width"] - nat[0] * scale) / 2, (box["height"] - nat[1] * scale) / 2
    for fy in (0.05, 0.95):
        img.click(position={"x": left + 0.3 * nat[0] * scale, "y": top + fy * nat[1] * scale})
        page.wait_for_timeout(300)
    points = _wait_value(page, "#points textarea, #points input", r"\d\.\d+,\d\.\d+; \d\.\d+,\d\.\d+")
    xy = [(float(x), float(y)) for x, y in re.findall(r"(\d\.\d+),(\d\.\d+)", points)]
    assert len(xy) == 2 and all(abs(x - 0.3) < 0.01 for x, _ in xy), points  # where the clicks were made
    assert abs(xy[0][1] - 0.05) < 0.01 and abs(xy[1][1] - 0.95) < 0.01, points
    page.fill("#region-name input, #region-name textarea", "door")
    page.click("#add-region")
    _wait_text(page, "#geometry", r"line \*?\*?door")
    # the first person walks in and stands at the table: counts, log and IDs follow
    # the counts table (inner text: tab-separated): "zone table | inside now | entered | left | ..."
    _wait_text(page, "#counts", r"zone table\s+person 1\s+person 1\b", timeout=150)
    _wait_text(page, "#events", r"zone_entered", timeout=30)
    table = _wait_text(page, "#detections", r"person", timeout=30)
    assert re.search(r"person[\s\S]*?\b\d+\s*$", table, re.M), table  # the track column holds an ID
    page.screenshot(path=str(ARTIFACTS / "analytics.png"), full_page=True)
    # tracking off: the counts panel says so and the table's track column empties
    page.get_by_label("Tracking (IDs and trails)").uncheck()
    _wait_text(page, "#counts", r"Tracking is off", timeout=15)
    page.click("#stop")
    _wait_text(page, "#status", r"Stopped|End of")
