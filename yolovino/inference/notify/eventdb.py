"""The event store's SQLite schema and its read API: `EventStore(path).query(...)`, `counts_over_time(...)`.

One table `events` holds every event: the fields a review filters on as indexed columns (source, kind, label,
zone, line, time) and the whole `Event.to_dict()` as JSON (`data`), so a field added to events later is kept
without a schema change. `files` lists the snapshots and clips the rows point to, with their sizes: the
writer's retention (notify/store.py) deletes a file only when this table recorded it and no row points to it
any more, never anything else in those folders.

Readers (the UI's Review tab, the bench) open their own read-only connections: in WAL mode they read the last
committed state while the writer goes on, and they can never change the file.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yolovino.inference.core.errors import ConfigError

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,                 -- Event.timestamp (wall clock, s), as in to_dict()
    source TEXT NOT NULL,
    kind TEXT NOT NULL,
    track_id INTEGER NOT NULL,
    class_id INTEGER NOT NULL,
    label TEXT NOT NULL,
    score REAL NOT NULL,
    frame_index INTEGER NOT NULL,
    stream_time REAL NOT NULL,
    zone TEXT,
    line TEXT,
    direction TEXT,
    snapshot TEXT,
    clip TEXT,
    clip_ready INTEGER NOT NULL DEFAULT 0,
    data TEXT NOT NULL                -- the whole Event.to_dict() as JSON
);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts);
CREATE INDEX IF NOT EXISTS events_source ON events (source, ts);
CREATE INDEX IF NOT EXISTS events_kind ON events (kind, ts);
CREATE INDEX IF NOT EXISTS events_label ON events (label, ts);
CREATE INDEX IF NOT EXISTS events_zone ON events (zone, ts) WHERE zone IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_line ON events (line, ts) WHERE line IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_snapshot ON events (snapshot) WHERE snapshot IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_clip ON events (clip) WHERE clip IS NOT NULL;
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,            -- a snapshot or clip a row of this store recorded
    kind TEXT NOT NULL,               -- "snapshot" | "clip"
    bytes INTEGER NOT NULL DEFAULT 0,
    ready INTEGER NOT NULL DEFAULT 0  -- on disk under this name (a clip is announced before it is complete)
);
"""

BUCKETS = {"hour": 3600, "day": 86400}


@dataclass
class StoredEvent:
    """One row: its id, the event as `Event.to_dict()` gave it, and where its pictures are."""

    id: int
    data: dict[str, Any]
    snapshot: str | None
    clip: str | None
    clip_ready: bool

    @property
    def region(self) -> str:
        """`zone <name>` / `line <name>` or "" (what the review's zone/line filter offers)."""
        if self.data.get("zone"):
            return f"zone {self.data['zone']}"
        return f"line {self.data['line']}" if self.data.get("line") else ""


def _where(
    source: str | None = None,
    kind: str | None = None,
    label: str | None = None,
    zone: str | None = None,
    line: str | None = None,
    since: float | None = None,
    until: float | None = None,
    track_id: int | None = None,
) -> tuple[str, list[Any]]:
    """The WHERE clause of a filter (each condition served by an index) and its parameters."""
    terms: list[str] = []
    args: list[Any] = []
    for column, value in (("source", source), ("kind", kind), ("label", label), ("zone", zone), ("line", line)):
        if value:
            terms.append(f"{column} = ?")
            args.append(value)
    if track_id is not None:
        terms.append("track_id = ?")
        args.append(int(track_id))
    if since is not None:
        terms.append("ts >= ?")
        args.append(since)
    if until is not None:
        terms.append("ts < ?")
        args.append(until)
    return (" WHERE " + " AND ".join(terms)) if terms else "", args


class EventStore:
    """Read-only access to a store written by the `db` event consumer (notify/store.py).

    Each call opens its own read-only connection (a few hundred microseconds): callers on any thread (the
    UI's handlers) never share one, and a reader never blocks the writer (WAL)."""

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()
        if not self.path.is_file():
            raise ConfigError(f"{self.path}: no event store there (the `events: {{db: ...}}` file of a run)")

    def connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path.resolve().as_uri() + "?mode=ro", uri=True, timeout=5.0)
            conn.execute("SELECT 1 FROM events LIMIT 1")
        except sqlite3.Error as exc:
            raise ConfigError(f"{self.path}: not an event store ({exc})") from None
        return conn

    def query(self, limit: int = 100, offset: int = 0, **filters: Any) -> list[StoredEvent]:
        """Events matching the filters (source, kind, label, zone, line, track_id: exact; since/until:
        wall-clock seconds, until excluded), newest first."""
        where, args = _where(**filters)
        sql = (
            f"SELECT id, data, snapshot, clip, clip_ready FROM events{where} ORDER BY ts DESC, id DESC LIMIT ? OFFSET ?"
        )
        with closing(self.connect()) as conn:
            rows = conn.execute(sql, [*args, int(limit), int(offset)]).fetchall()
        return [StoredEvent(r[0], json.loads(r[1]), r[2], r[3], bool(r[4])) for r in rows]

    def count(self, **filters: Any) -> int:
        where, args = _where(**filters)
        with closing(self.connect()) as conn:
            return int(conn.execute(f"SELECT COUNT(*) FROM events{where}", args).fetchone()[0])

    def get(self, event_id: int) -> StoredEvent | None:
        with closing(self.connect()) as conn:
            r = conn.execute(
                "SELECT id, data, snapshot, clip, clip_ready FROM events WHERE id = ?", (int(event_id),)
            ).fetchone()
        return StoredEvent(r[0], json.loads(r[1]), r[2], r[3], bool(r[4])) if r else None

    def choices(self) -> dict[str, list[str]]:
        """The distinct sources, kinds, labels, zones and lines in the store (for the review's filters)."""
        out = {}
        with closing(self.connect()) as conn:
            for column in ("source", "kind", "label", "zone", "line"):
                rows = conn.execute(f"SELECT DISTINCT {column} FROM events WHERE {column} IS NOT NULL ORDER BY 1")
                out[column] = [r[0] for r in rows]
        return out

    def counts_over_time(
        self, bucket: str = "hour", source: str | None = None, since: float | None = None, until: float | None = None
    ) -> list[tuple[float, str, int]]:
        """(bucket start, series, count) per hour or day (UTC): zone entries per zone (`zone <name>`) and line
        crossings per line and direction (`line <name> in`), oldest first."""
        size = BUCKETS[bucket]
        where, args = _where(source=source, since=since, until=until)
        cond = "(kind = 'zone_entered' OR kind = 'line_crossed')"
        where = f"{where} AND {cond}" if where else f" WHERE {cond}"
        sql = (
            f"SELECT CAST(ts / {size} AS INTEGER) * {size} AS b, "
            "CASE WHEN zone IS NOT NULL THEN 'zone ' || zone "
            "ELSE 'line ' || line || COALESCE(' ' || direction, '') END AS series, COUNT(*) "
            f"FROM events{where} GROUP BY b, series ORDER BY b, series"
        )
        with closing(self.connect()) as conn:
            return [(float(b), str(s), int(n)) for b, s, n in conn.execute(sql, args)]


__all__ = ["BUCKETS", "SCHEMA", "SCHEMA_VERSION", "EventStore", "StoredEvent"]
