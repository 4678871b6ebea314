"""What the Review tab shows, without Gradio: table rows with thumbnails, one event's details, counts per bucket.

The tab (ui/review.py) only wires these to components, so the bench (bench/review_bench.py) times exactly
what a filter costs the page: the indexed query plus the rows and thumbnails of the newest `PAGE` events.
Thumbnails are small JPEG data URLs inside the table's markdown cells (no file under Gradio's cache per
row), made once per snapshot file and kept in a bounded cache.
"""

from __future__ import annotations

import base64
import shutil
import threading
from collections import OrderedDict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from yolovino.inference.notify.eventdb import EventStore, StoredEvent

PAGE = 100  # rows the table shows (newest first); the status line says how many match in all
THUMB_W = 120
HEADERS = ["", "time (UTC)", "camera", "kind", "class", "zone / line", "track", "clip", "id"]
ALL = "(all)"


class Thumbnails:
    """Snapshot path -> markdown image of a small JPEG (data URL); an LRU cache bounded to `size` entries."""

    def __init__(self, size: int = 4096):
        self.size = size
        self._cache: OrderedDict[tuple[str, int], str] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, path: str | None) -> str:
        if not path:
            return ""
        try:
            key = (path, Path(path).stat().st_mtime_ns)
        except OSError:
            return "(gone)"  # retention deleted it, or the folder is not mounted here
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        md = _thumbnail(path)
        with self._lock:
            self._cache[key] = md
            while len(self._cache) > self.size:
                self._cache.popitem(last=False)
        return md


def store_version(path: str | None) -> tuple[int, ...]:
    """What changes whenever the store's writer commits: the size and modification time of the database and
    its write-ahead log (two stat calls, no SQL), so a page that follows new events re-queries only when
    there is something new (a clip made complete is an UPDATE: it counts too)."""
    if not path:
        return ()
    out: list[int] = []
    for f in (Path(path), Path(f"{path}-wal")):
        try:
            st = f.stat()
            out += [st.st_size, st.st_mtime_ns]
        except OSError:
            out += [-1, -1]
    return tuple(out)


def _thumbnail(path: str) -> str:
    import cv2

    img = cv2.imread(path, cv2.IMREAD_REDUCED_COLOR_2)  # JPEG decodes at half size for free
    if img is None:
        return "(unreadable)"
    h, w = img.shape[:2]
    small = cv2.resize(img, (THUMB_W, max(1, round(h * THUMB_W / w))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 70])
    return f"![snapshot](data:image/jpeg;base64,{base64.b64encode(buf.tobytes()).decode()})" if ok else ""


def when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def filters_of(
    source: str | None, kind: str | None, label: str | None, region: str | None, since, until
) -> dict[str, Any]:
    """The store's query filters from the tab's controls ("(all)" or empty: no condition)."""
    out: dict[str, Any] = {}
    for key, value in (("source", source), ("kind", kind), ("label", label)):
        if value and value != ALL:
            out[key] = value
    if region and region != ALL:
        what, _, name = region.partition(" ")  # "zone door" / "line gate"
        out[what if what in ("zone", "line") else "zone"] = name
    if since not in (None, ""):
        out["since"] = float(since)
    if until not in (None, ""):
        out["until"] = float(until)
    return out


def rows(store: EventStore, filters: dict[str, Any], thumbs: Thumbnails) -> tuple[list[list], list[int], int]:
    """(table rows, their event ids, how many events match in all): the newest PAGE matching events."""
    events = store.query(limit=PAGE, **filters)
    table = []
    for e in events:
        d = e.data
        clip = "ready" if e.clip and e.clip_ready else ("pending" if e.clip else "")
        label = d["label"] + (f" ({d['direction']})" if d.get("direction") else "")
        table.append(
            [
                thumbs(e.snapshot),
                when(d["timestamp"]),
                d["source"],
                d["kind"],
                label,
                e.region,
                d["track_id"],
                clip,
                e.id,
            ]
        )
    total = len(events) if len(events) < PAGE else store.count(**filters)
    return table, [e.id for e in events], total


def choices(store: EventStore) -> dict[str, list[str]]:
    """Dropdown choices: each with "(all)" first; zones and lines as "zone <name>" / "line <name>"."""
    c = store.choices()
    regions = [f"zone {z}" for z in c["zone"]] + [f"line {n}" for n in c["line"]]
    return {
        "source": [ALL, *c["source"]],
        "kind": [ALL, *c["kind"]],
        "label": [ALL, *c["label"]],
        "region": [ALL, *regions],
    }


def details(store: EventStore, event: StoredEvent) -> tuple[str, list[list]]:
    """Markdown of one event, and the events of its track (same camera and ID, within an hour), oldest first."""
    d = event.data
    lines = [
        f"**{d['kind']}** of track **{d['track_id']}** ({d['label']}, score {d['score']:.2f}) on **{d['source']}**"
    ]
    lines.append(f"at {when(d['timestamp'])} UTC, {d['stream_time']:.2f} s into the stream, frame {d['frame_index']}")
    extra = {k: v for k, v in d.items() if k in ("zone", "line", "direction", "duration_s", "reason", "speed_kmh")}
    if extra:
        lines.append(", ".join(f"{k}: {v}" for k, v in extra.items()))
    lines.append(f"box: {d['box']}")
    if event.clip and not event.clip_ready:
        lines.append("clip: being written")
    elif not event.clip:
        lines.append("no clip recorded for this event")
    ts = d["timestamp"]
    track = store.query(limit=PAGE, source=d["source"], track_id=d["track_id"], since=ts - 3600, until=ts + 3600)
    table = [
        [when(t.data["timestamp"]), t.data["kind"], t.region, t.data.get("direction", ""), t.data["label"]]
        for t in reversed(track)
    ]
    return "  \n".join(lines), table


TRACK_HEADERS = ["time (UTC)", "kind", "zone / line", "direction", "class"]


def counts_frame(store: EventStore, bucket: str, source: str | None = None):
    """A pandas DataFrame (time, series, count) of zone entries and line crossings per bucket, for the plot;
    the bucket's start as text (UTC), so that each bucket is one bar whatever the gaps between them."""
    import pandas as pd

    data = store.counts_over_time(bucket, source=source if source and source != ALL else None)
    fmt = "%Y-%m-%d %H:00" if bucket == "hour" else "%Y-%m-%d"
    return pd.DataFrame(
        {
            "time": [datetime.fromtimestamp(b, UTC).strftime(fmt) for b, _, _ in data],
            "series": [s for _, s, _ in data],
            "count": [n for _, _, n in data],
        }
    )


def playable(event: StoredEvent, folder: Path) -> str | None:
    """A copy of the event's clip in `folder` (a path the page may serve), or None without a complete clip.

    Gradio serves only files under the app's temp folder: the clip is copied there (the previous copy made
    for this folder is replaced, so the folder holds one clip per open page at most)."""
    if not event.clip or not event.clip_ready or not Path(event.clip).is_file():
        return None
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("clip-*.mp4"):
        old.unlink(missing_ok=True)
    dst = folder / f"clip-{event.id}.mp4"
    shutil.copyfile(event.clip, dst)
    return str(dst)
