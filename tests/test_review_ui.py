"""The Review tab in real headless Chromium (Playwright), on the store a real headless run of the car clip wrote
(tests/event_store_run.py), one of whose events got a clip through `clip_ready` (the clip writer's call).

The app runs as `app.py --events-db STORE` in a subprocess on a free 127.0.0.1 port. Screenshots go to
artifacts/ui/ (review-*.png).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from event_store_run import headless_store
from test_ui import ARTIFACTS, CHROME_ARGS, CHROMIUM, _free_port, _wait_text, wait_for_ui

from yolovino.inference.core.events import Event, EventKind
from yolovino.inference.notify.base import Delivery
from yolovino.inference.notify.config import StoreOutput
from yolovino.inference.notify.store import EventStoreConsumer

REPO = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.ui, pytest.mark.slow]


def _event(d: dict) -> Event:
    return Event(
        EventKind(d["kind"]), d["timestamp"], d["source"], d["track_id"], d["class_id"], d["label"], d["score"],
        tuple(d["box"]), d["frame_index"], d["stream_time"], zone=d.get("zone"), line=d.get("line"),
        direction=d.get("direction"),
    )  # fmt: skip


@pytest.fixture(scope="module")
def review_store(tmp_path_factory, detect_ir, require_asset):
    """(store run, the JSONL events, the event that has a clip) after a clip is made complete for it."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is needed to cut the event's clip")
    run = headless_store(tmp_path_factory, detect_ir, require_asset("videos/car-detection.mp4"))
    events = [json.loads(x) for x in run.jsonl.read_text().splitlines()]
    crossed = [e for e in events if e["kind"] == "line_crossed"][-1]  # the newest crossing gets a clip
    clip = run.folder / "clips" / f"lane-{crossed['track_id']}.mp4"
    if not clip.exists():
        clip.parent.mkdir(exist_ok=True)
        start = max(crossed["stream_time"] - 2.0, 0.0)
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-ss", str(start), "-i", str(run.clip), "-t", "4", "-c", "copy", "-an"]
            + [str(clip)],
            check=True,
            timeout=60,
        )
        store = EventStoreConsumer(StoreOutput(path=str(run.db)))
        store.clip_ready("lane", str(clip), [_event(crossed)])
        store.close()
    return run, events, crossed


@pytest.fixture(scope="module")
def review_url(review_store, detect_ir, tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed (/usr/bin/chromium)")
    run = review_store[0]
    # the page reads a copy: the test adds an event to it, and other tests compare the run's store to its JSONL
    db = tmp_path_factory.mktemp("review-db") / "events.db"
    with sqlite3.connect(run.db) as src, sqlite3.connect(db) as dst:
        src.backup(dst)
    models = tmp_path_factory.mktemp("review-models")
    (models / "yolov8n").mkdir()
    (models / "yolov8n" / "fp32").symlink_to(detect_ir.parent, target_is_directory=True)
    port = _free_port()
    log = (tmp_path_factory.mktemp("review-log") / "server.log").open("w")
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "YOLO_APP_MODELS": str(models)}
    cmd = [sys.executable, "app.py", "--port", str(port), "--model", str(detect_ir), "--events-db", str(db)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env)
    yield wait_for_ui(proc, port, log), db
    proc.terminate()
    proc.wait(timeout=30)
    log.close()
    text = Path(log.name).read_text()
    assert "Traceback" not in text and proc.returncode == 0, text[-3000:]


def _cell(page, row: int, col: int):
    return page.locator(f"#review-table [data-testid='cell-{row}-{col}']")


def _column(page, col: int, rows: int) -> list[str]:
    return [_cell(page, r, col).inner_text().strip() for r in range(rows)]


def _pick(page, dropdown: str, option: str) -> None:
    page.click(f"{dropdown} input")
    page.get_by_role("option", name=option, exact=True).click()


def test_review_lists_filters_and_plays_an_event(review_store, review_url):
    from playwright.sync_api import sync_playwright

    run, events, crossed = review_store
    url, db = review_url
    newest_first = sorted(events, key=lambda e: e["timestamp"], reverse=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROME_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(url, wait_until="domcontentloaded")
        page.wait_for_selector("#start", timeout=30_000)
        page.get_by_role("tab", name="Review").click()
        _wait_text(page, "#review-status", rf"^{len(events)} event\(s\) match")
        # newest first; a thumbnail on each row with a snapshot (the table draws the rows in view: the first 5)
        top = newest_first[:5]
        assert _column(page, 3, len(top)) == [e["kind"] for e in top]
        for i, e in enumerate(top):
            img = _cell(page, i, 0).locator("img")
            assert img.count() == (1 if "snapshot" in e else 0), i
            if "snapshot" in e:
                assert (img.get_attribute("src") or "").startswith("data:image/jpeg;base64,")
        assert page.locator("#review-plot canvas, #review-plot svg").count() > 0  # the counts plot is drawn
        page.screenshot(path=str(ARTIFACTS / "review-list.png"), full_page=True)

        # filters: zone/line, then kind, then time; the table and the count follow
        _pick(page, "#review-region", "zone top")
        in_zone = [e for e in events if e.get("zone") == "top"]
        _wait_text(page, "#review-status", rf"^{len(in_zone)} event\(s\) match")
        _pick(page, "#review-region", "(all)")
        _pick(page, "#review-kind", "line_crossed")
        crossings = [e for e in newest_first if e["kind"] == "line_crossed"]
        _wait_text(page, "#review-status", rf"^{len(crossings)} event\(s\) match")
        assert _column(page, 3, len(crossings)) == ["line_crossed"] * len(crossings)
        assert _column(page, 5, len(crossings)) == ["line middle"] * len(crossings)
        since_ts = crossings[-3]["timestamp"] // 1  # from the third crossing's second on
        later = [e for e in crossings if e["timestamp"] >= since_ts]
        assert crossed in later and len(later) < len(crossings)
        box = page.locator("#review-since input").first
        box.fill(time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(since_ts)))
        box.press("Enter")
        _wait_text(page, "#review-status", rf"^{len(later)} event\(s\) match")

        # selecting the crossing that has a clip plays it, shows its snapshot and its track's events
        _cell(page, later.index(crossed), 3).click()
        _wait_text(page, "#review-details", rf"line_crossed.*track {crossed['track_id']}")
        page.wait_for_selector("#review-clip video", timeout=30_000)
        src = page.locator("#review-clip video").get_attribute("src") or ""
        assert re.search(r"clip-\d+\.mp4", src), src
        page.wait_for_selector("#review-snapshot img", timeout=30_000)
        track_kinds = [e["kind"] for e in events if e["track_id"] == crossed["track_id"]]
        track_text = _wait_text(page, "#review-track", "line_crossed")
        assert all(k in track_text for k in track_kinds), (track_kinds, track_text)
        # the browser decodes the clip (4 s cut on keyframes); then it shows its middle (the car on the line)
        duration = page.evaluate(
            "async () => { const v = document.querySelector('#review-clip video');"
            " const late = new Promise(r => setTimeout(() => r(NaN), 20000));"
            " if (v.readyState < 1) await Promise.race([late,"
            "   new Promise(r => v.addEventListener('loadedmetadata', r, {once: true}))]);"
            " if (!(v.duration > 0)) return v.duration;"
            " const seeked = new Promise(r => v.addEventListener('seeked', r, {once: true}));"
            " v.currentTime = v.duration / 2; await Promise.race([late, seeked]); return v.duration; }"
        )
        assert 2.0 < duration < 8.0, duration
        page.screenshot(path=str(ARTIFACTS / "review-selected.png"), full_page=True)

        # following new events (on by default): a crossing the store's writer commits now shows up by itself,
        # on top, with the filters kept
        new = {**crossed, "timestamp": time.time(), "track_id": 9999}
        writer = EventStoreConsumer(StoreOutput(path=str(db)))
        writer.handle(Delivery("lane", [_event(new)]))
        writer.close()
        _wait_text(page, "#review-status", rf"^{len(later) + 1} event\(s\) match")
        assert _cell(page, 0, 6).inner_text().strip() == "9999"
        assert page.locator("#review-kind input").input_value() == "line_crossed"
        browser.close()
