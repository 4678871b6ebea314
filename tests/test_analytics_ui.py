"""The analytics section of the page in real headless Chromium: a zone typed in, a line drawn by clicking on
the video, live counts, the event log and track IDs in the detection table; a motion mask clicked on the
video, motion gating and "Show motion" (the hatched mask and the gate's green regions in the streamed
frames); screenshots for a person to look at (artifacts/ui/analytics.png, motion.png; docs/motion.png is a
crop of the latter). The app, browser and page fixtures are test_ui.py's."""

from __future__ import annotations

import re

import pytest
from test_ui import (  # noqa: F401
    ARTIFACTS,
    _decode,
    _output_src,
    _wait_frames,
    _wait_text,
    app_url,
    browser,
    fake_camera,
    page,
    ui_models_dir,
)

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


WALL = ((0.55, 0.05), (0.95, 0.05), (0.95, 0.45), (0.55, 0.45))  # the wall right of the table: nothing moves there


def _click_frame(pg, points) -> None:
    """Click normalised points on the streamed frame (centred in the image box, not stretched)."""
    img = pg.locator("#output img")
    box = img.bounding_box()
    nat = img.evaluate("i => [i.naturalWidth, i.naturalHeight]")
    assert box is not None and nat[0] > 0
    scale = min(box["width"] / nat[0], box["height"] / nat[1], 1.0)
    left, top = (box["width"] - nat[0] * scale) / 2, (box["height"] - nat[1] * scale) / 2
    for x, y in points:
        img.click(position={"x": left + x * nat[0] * scale, "y": top + y * nat[1] * scale})
        pg.wait_for_timeout(300)


def _overlay_shares(pg) -> tuple[float, float]:
    """(share of cyan hatch pixels inside the wall mask, share of pure green motion pixels in the frame) of
    the frame the page shows now (a JPEG: colours within a tolerance)."""
    img = _decode(_output_src(pg) or "")
    h, w = img.shape[:2]
    b, g, r = (img[..., k].astype(int) for k in range(3))
    cyan = (b > 170) & (g > 170) & (r < 110)
    green = (g > 170) & (b < 110) & (r < 110)
    (x0, y0), (x1, y1) = WALL[0], WALL[2]
    inside = cyan[int(y0 * h) + 3 : int(y1 * h) - 3, int(x0 * w) + 3 : int(x1 * w) - 3]
    return float(inside.mean()), float(green.mean())


def test_motion_mask_drawn_on_the_video_and_motion_shown(page):  # noqa: F811
    page.click("#start")
    _wait_frames(page, n=2)
    assert _overlay_shares(page)[0] < 0.005  # nothing of the kind before "Show motion"
    page.get_by_label("motion mask", exact=True).check()
    # a mask that crosses itself is refused with one message, and nothing is added
    page.fill("#points textarea, #points input", "0.1,0.1; 0.5,0.5; 0.5,0.1; 0.1,0.5")
    page.click("#add-region")
    page.get_by_text("the polygon crosses itself").first.wait_for(timeout=15_000)
    assert "No motion masks" in page.inner_text("#masks")
    page.fill("#points textarea, #points input", "")
    _click_frame(page, WALL)  # the wall, clicked corner by corner; Add closes the polygon
    points = _wait_value(page, "#points textarea, #points input", r"(\d\.\d+,\d\.\d+; ){3}\d\.\d+,\d\.\d+")
    xy = [(float(x), float(y)) for x, y in re.findall(r"(\d\.\d+),(\d\.\d+)", points)]
    assert all(abs(x - a) < 0.01 and abs(y - b) < 0.01 for (x, y), (a, b) in zip(xy, WALL)), points
    page.fill("#region-name input, #region-name textarea", "wall")
    page.click("#add-region")
    _wait_text(page, "#masks", r"mask \*?\*?wall\*?\*?: 0\.5[45]\d,0\.0[45]\d")  # the backend's list
    page.get_by_label("Motion gating (detect only on motion)").check()
    page.get_by_label("Show motion").check()
    # the next frames carry the gate's view: the mask hatched, and once she walks in, her motion in green
    # (and, for the screenshot, a frame where the detector also sees her)
    shares, table = (0.0, 0.0), ""
    for _ in range(600):
        shares, table = _overlay_shares(page), page.inner_text("#detections")
        if shares[0] > 0.02 and shares[1] > 0.003 and "person" in table:
            break
        page.wait_for_timeout(200)
    assert shares[0] > 0.02 and shares[1] > 0.003, f"no motion overlay in the stream: {shares}"
    page.locator("#output").screenshot(path=str(ARTIFACTS / "motion-frame.png"))
    page.screenshot(path=str(ARTIFACTS / "motion.png"), full_page=True)
    # off again: the next frames have no hatching
    page.get_by_label("Show motion").uncheck()
    for _ in range(100):
        if _overlay_shares(page)[0] < 0.005:
            break
        page.wait_for_timeout(200)
    assert _overlay_shares(page)[0] < 0.005
    page.click("#clear-masks")
    _wait_text(page, "#masks", r"No motion masks")
    page.click("#stop")
    _wait_text(page, "#status", r"Stopped|End of")
