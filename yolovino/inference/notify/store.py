"""The event store: every event, with its snapshot and clip paths, in an SQLite file (`events: {db: FILE}`).

    events:
      db: events.db                                        # or {path: events.db, max_age_days: 30, max_mb: 2000}

A consumer like the others (notify/hub.py): it sits behind its own bounded queue, and its worker thread is the
only writer of the file. Each delivery (one frame's events) is one transaction; only once it has committed
does `handle` return, so an event the hub counts as sent is on disk.

Durability: WAL journal with `synchronous=FULL`. In WAL mode NORMAL already survives a killed process (a
commit is in the OS's page cache before `handle` returns); FULL also survives a power cut, at the price of one
fsync per delivery. Events come a few per second at most and the fsync is paid on this consumer's own thread,
never the video's, so the stronger promise costs nothing that matters. A process killed mid-transaction
leaves the file as of the last commit (SQLite rolls the WAL's unfinished tail back on the next open).

Retention (`max_age_days`, `max_mb`, checked at start and then at most once a minute): rows older than the age
go, then the oldest rows until the database plus the snapshots and clips its rows recorded fit in `max_mb`.
A file is deleted only when this store recorded it (table `files`) and no row points to it any more: other
files in those folders are never touched. A clip announced but not yet complete (`clip_ready` not called) is
kept until it is.

Clips: an event carries the final path of the clip that will hold it (`Event.clip`, set before delivery);
the clip writer calls `clip_ready(source, path, events)` on this consumer's worker thread once the file is
complete, and the rows are marked ready (the Review tab plays only ready clips).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from pathlib import Path

from yolovino.inference.core.errors import ConfigError
from yolovino.inference.core.events import Event
from yolovino.inference.notify.base import Delivery, register_consumer
from yolovino.inference.notify.config import StoreOutput
from yolovino.inference.notify.eventdb import SCHEMA, SCHEMA_VERSION

log = logging.getLogger(__name__)

RETENTION_EVERY_S = 60.0
_BATCH = 500  # at most this many rows deleted per step when over the size budget

_INSERT = (
    "INSERT INTO events (ts, source, kind, track_id, class_id, label, score, frame_index, stream_time, zone, line, "
    "direction, snapshot, clip, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


@register_consumer("db", dedup=lambda cfg: os.path.abspath(cfg.path))
class EventStoreConsumer:
    """Writes each delivery's events into the store in one transaction; applies retention (module docstring)."""

    def __init__(self, cfg: StoreOutput):
        self.cfg = cfg
        self.path = Path(cfg.path).expanduser()
        self.name = f"db:{self.path.name}"
        if self.path.is_dir() or not self.path.parent.is_dir():
            raise ConfigError(f"{self.path}: event store needs an existing folder and a file name")
        try:
            # made on the thread that builds the hub, used only by the consumer's worker thread from then on
            self._db = sqlite3.connect(self.path, timeout=10.0, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                raise ConfigError(f"{self.path}: event store of schema {version}, this version reads {SCHEMA_VERSION}")
            tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if version == 0 and tables:  # someone else's database: never add our tables to it
                raise ConfigError(f"{self.path}: an SQLite file that is not an event store (tables {sorted(tables)})")
            self._db.executescript(f"BEGIN; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")
        except sqlite3.Error as exc:
            raise ConfigError(f"{self.path}: cannot open the event store ({exc})") from None
        self._next_retention = 0.0
        self.deleted_rows = self.deleted_files = 0
        self._retention()

    # --- writing ------------------------------------------------------------------------------------------

    def handle(self, delivery: Delivery) -> None:
        """One transaction for the delivery's events (and the files they point to); returns once committed."""
        if delivery.events:
            with self._transaction() as db:
                for e in delivery.events:
                    self._insert(db, e)
        if time.monotonic() >= self._next_retention:
            self._retention()

    def _insert(self, db: sqlite3.Connection, e: Event) -> None:
        d = e.to_dict()
        clip = getattr(e, "clip", None)  # Event.clip: the clip writer's final path (the shared clip contract)
        if clip is not None:
            d["clip"] = clip
        db.execute(
            _INSERT,
            (
                d["timestamp"],
                e.source,
                d["kind"],
                e.track_id,
                e.class_id,
                e.label,
                d["score"],
                e.frame_index,
                d["stream_time"],
                e.zone,
                e.line,
                e.direction,
                e.snapshot,
                clip,
                json.dumps(d, separators=(",", ":")),
            ),
        )
        if e.snapshot:  # written by the snapshot stage before the delivery reached any consumer
            db.execute(
                "INSERT OR IGNORE INTO files (path, kind, bytes, ready) VALUES (?, 'snapshot', ?, 1)",
                (e.snapshot, _size(e.snapshot)),
            )
        if clip:  # announced: the file appears when the clip is complete (clip_ready)
            db.execute("INSERT OR IGNORE INTO files (path, kind, bytes, ready) VALUES (?, 'clip', 0, 0)", (clip,))

    def clip_ready(self, source: str, path: str, events: list[Event]) -> None:
        """The clip at `path` is complete: record its size and mark its events' rows (those that name it, and
        the `events` it holds, matched by source, kind, track, frame and time) as having a playable clip."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO files (path, kind, bytes, ready) VALUES (?, 'clip', ?, 1) "
                "ON CONFLICT (path) DO UPDATE SET bytes = excluded.bytes, ready = 1",
                (path, _size(path)),
            )
            for e in events:
                d = e.to_dict()
                db.execute(
                    "UPDATE events SET clip = ?, clip_ready = 1 WHERE source = ? AND kind = ? AND track_id = ? "
                    "AND frame_index = ? AND ts = ?",
                    (path, source, d["kind"], e.track_id, e.frame_index, d["timestamp"]),
                )
            db.execute("UPDATE events SET clip_ready = 1 WHERE clip = ?", (path,))
        # a clip whose rows retention has already removed is not kept
        self._delete_orphans()

    def _transaction(self):
        return _Transaction(self._db)

    # --- retention ----------------------------------------------------------------------------------------

    def _retention(self) -> None:
        """Age, then size; files go with the last row that points to them (module docstring)."""
        self._next_retention = time.monotonic() + RETENTION_EVERY_S
        cfg = self.cfg
        if cfg.max_age_days is not None:
            cutoff = time.time() - cfg.max_age_days * 86400.0
            with self._transaction() as db:
                self.deleted_rows += db.execute("DELETE FROM events WHERE ts < ?", (cutoff,)).rowcount
            self._delete_orphans()
        if cfg.max_mb is not None:
            budget = cfg.max_mb * 1e6
            for _ in range(100_000):  # bounded: each step deletes rows or stops
                if self.used_bytes() <= budget:
                    break
                rows = self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
                step = max(1, min(_BATCH, rows // 20))  # 5 % of the rows: not much more than the excess
                with self._transaction() as db:
                    gone = db.execute(
                        "DELETE FROM events WHERE id IN (SELECT id FROM events ORDER BY ts, id LIMIT ?)", (step,)
                    ).rowcount
                self.deleted_rows += gone
                freed = self._delete_orphans()
                if not gone and not freed:
                    break  # nothing of ours left to delete: the budget is smaller than an empty store

    def used_bytes(self) -> int:
        """The database's used pages plus the recorded snapshots and clips on disk."""
        db = self._db
        pages = db.execute("PRAGMA page_count").fetchone()[0] - db.execute("PRAGMA freelist_count").fetchone()[0]
        files = db.execute("SELECT COALESCE(SUM(bytes), 0) FROM files").fetchone()[0]
        return int(pages * db.execute("PRAGMA page_size").fetchone()[0] + files)

    def _delete_orphans(self) -> int:
        """Delete the recorded files no row points to any more (complete ones only); returns how many."""
        orphans = [
            r[0]
            for r in self._db.execute(
                "SELECT path FROM files f WHERE ready = 1 "
                "AND NOT EXISTS (SELECT 1 FROM events WHERE snapshot = f.path) "
                "AND NOT EXISTS (SELECT 1 FROM events WHERE clip = f.path)"
            )
        ]
        removed = []
        for path in orphans:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError as exc:  # kept in `files`: tried again at the next retention
                log.warning("event store: cannot delete %s (%s)", path, exc.strerror)
                continue
            removed.append((path,))
        if removed:
            with self._transaction() as db:
                db.executemany("DELETE FROM files WHERE path = ?", removed)
            self.deleted_files += len(removed)
        return len(removed)

    def close(self) -> None:
        self._db.close()


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on an exception) on a connection in autocommit mode."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, exc, tb) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")


__all__ = ["EventStoreConsumer"]
