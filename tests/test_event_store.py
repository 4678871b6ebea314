"""The SQLite event store (notify/store.py, notify/eventdb.py): a real headless run writes it, a kill -9 in the
middle of a burst loses no acknowledged event and leaves a sound file, retention deletes only its own files."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from event_store_run import SOURCE, headless_store

from yolovino.inference.core.errors import ConfigError
from yolovino.inference.core.events import Event, EventKind
from yolovino.inference.notify.base import Delivery
from yolovino.inference.notify.config import EventOutputs
from yolovino.inference.notify.eventdb import EventStore
from yolovino.inference.notify.store import EventStoreConsumer

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run(tmp_path_factory, detect_ir, require_asset):
    return headless_store(tmp_path_factory, detect_ir, require_asset("videos/car-detection.mp4"))


@pytest.mark.slow
def test_headless_run_writes_a_store_whose_rows_are_the_jsonl_events(run):
    jsonl = [json.loads(x) for x in run.jsonl.read_text().splitlines()]
    store = EventStore(run.db)
    rows = list(reversed(store.query(limit=10_000)))  # oldest first, like the JSONL file
    assert len(jsonl) >= 10 and [r.data for r in rows] == jsonl
    kinds = Counter(e["kind"] for e in jsonl)
    assert kinds["line_crossed"] == 4 and kinds["zone_entered"] >= 2, kinds
    # indexed filters give what filtering the JSONL gives
    for filters in (
        {"kind": "line_crossed"},
        {"line": "middle"},
        {"zone": "top", "kind": "zone_entered"},
        {"source": SOURCE, "label": jsonl[0]["label"]},
        {"since": jsonl[3]["timestamp"], "until": jsonl[-2]["timestamp"]},
    ):
        want = [
            e
            for e in jsonl
            if all(
                (e["timestamp"] >= v if k == "since" else e["timestamp"] < v if k == "until" else e.get(k) == v)
                for k, v in filters.items()
            )
        ]
        got = store.query(limit=10_000, **filters)
        assert [r.data for r in reversed(got)] == want, filters
        assert store.count(**filters) == len(want)
    # snapshots: the rows point to the JPEGs written, and the store recorded each of them with its size
    snaps = {e["snapshot"] for e in jsonl if "snapshot" in e}
    assert snaps and all(Path(s).is_file() for s in snaps)
    with sqlite3.connect(run.db) as db:
        files = dict(db.execute("SELECT path, bytes FROM files WHERE kind = 'snapshot'").fetchall())
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert files == {s: os.path.getsize(s) for s in snaps}
    # per-line crossings over time: the buckets add up to the crossings of each direction
    series = Counter()
    for _, name, n in store.counts_over_time("hour"):
        series[name] += n
    assert series["line middle in"] == sum(1 for e in jsonl if e["kind"] == "line_crossed" and e["direction"] == "in")
    assert series["zone top"] == kinds["zone_entered"]
    assert store.choices()["line"] == ["middle"] and store.choices()["zone"] == ["top"]


@pytest.mark.slow
def test_every_line_crossing_of_the_run_has_a_complete_clip_in_the_store(run):
    """The clip writer (outputs/clips.py), the hub's clip_ready and the store together: every crossing names
    its clip before delivery, the store marks it ready once the file is final, and ffprobe reads each file."""
    crossings = [r for r in EventStore(run.db).query(limit=10_000, kind="line_crossed")]
    assert len(crossings) == 4
    clips = {r.data["clip"] for r in crossings}
    assert clips and all(Path(c).parent == run.clips / SOURCE for c in clips), clips
    with sqlite3.connect(run.db) as db:
        ready = dict(db.execute("SELECT path, ready FROM files WHERE kind = 'clip'").fetchall())
        not_ready = db.execute("SELECT COUNT(*) FROM events WHERE kind = 'line_crossed' AND clip_ready = 0")
        assert not_ready.fetchone()[0] == 0
    assert ready == dict.fromkeys(clips, 1)
    written = sorted(p.name for p in (run.clips / SOURCE).iterdir())
    assert written == sorted(Path(c).name for c in clips)  # no .part left
    for c in clips:
        out = subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", c],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert out.returncode == 0 and float(out.stdout) >= 3.5, (c, out.stdout, out.stderr)  # pre 2 s + post 2 s


def test_kill_9_during_a_burst_loses_no_acknowledged_event(tmp_path):
    db = tmp_path / "burst.db"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")])}
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "event_store_burst.py"), str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    acked: Counter[int] = Counter()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # bounded: the process is killed once enough are acknowledged
            acked.update(int(f) for f in line.split()[1:])
            if len(acked) >= 400:
                break
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert len(acked) >= 400, proc.stderr.read() if proc.stderr else ""
    with sqlite3.connect(db) as conn:  # opening recovers the WAL
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = Counter(f for (f,) in conn.execute("SELECT frame_index FROM events"))
    missing = [f for f in acked if f not in stored]
    assert not missing, f"{len(missing)} acknowledged frames lost, e.g. {missing[:5]}"
    # one transaction per delivery: a frame's two events are both there or both not
    assert set(stored.values()) == {2}, Counter(stored.values())
    assert len(stored) >= len(acked)


def _event(kind: EventKind, ts: float, track: int, snapshot: str | None = None, **kw) -> Event:
    return Event(
        kind, ts, "cam", track, 0, "person", 0.9, (1.0, 2.0, 30.0, 40.0), track, float(track), snapshot=snapshot, **kw
    )


def _jpeg(path: Path, kb: int) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng(kb).integers(0, 255, kb * 1024, dtype=np.uint8).tobytes())
    return str(path)


def test_retention_by_age_and_size_deletes_only_its_own_files(tmp_path):
    snaps = tmp_path / "snaps"
    foreign = _jpeg(snaps / "someone-elses.jpg", 50)  # in the same folder, never recorded by the store
    old_a, old_b, shared = (_jpeg(snaps / f"{n}.jpg", 40) for n in ("old_a", "old_b", "shared"))
    now = time.time()
    cfg = EventOutputs.model_validate({"db": {"path": str(tmp_path / "ev.db"), "max_age_days": 1}}).db
    assert cfg is not None
    store = EventStoreConsumer(cfg)
    store.handle(Delivery("cam", [_event(EventKind.APPEARED, now - 3 * 86400, 1, old_a)]))
    store.handle(Delivery("cam", [_event(EventKind.ENTERED, now - 2 * 86400, 2, old_b, zone="door")]))
    # one snapshot shared by an old and a new event (two events of one frame)
    store.handle(Delivery("cam", [_event(EventKind.APPEARED, now - 2 * 86400, 3, shared)]))
    store.handle(Delivery("cam", [_event(EventKind.CROSSED, now, 4, shared, line="gate", direction="in")]))
    store.close()
    store = EventStoreConsumer(cfg)  # retention runs at start
    try:
        left = EventStore(cfg.path).query()
        assert [r.data["track_id"] for r in left] == [4]
        assert not Path(old_a).exists() and not Path(old_b).exists()
        assert Path(shared).exists() and Path(foreign).exists()
        assert store.deleted_rows == 3 and store.deleted_files == 2
    finally:
        store.close()

    # by size: the oldest rows go, with their files, until the database and its files fit
    size_cfg = EventOutputs.model_validate({"db": {"path": str(tmp_path / "size.db"), "max_mb": 1.0}}).db
    assert size_cfg is not None
    store = EventStoreConsumer(size_cfg)
    try:
        paths = []
        for i in range(30):  # 30 x 100 kB of snapshots: 3 MB, three times the budget
            paths.append(_jpeg(snaps / f"s{i}.jpg", 100))
            store.handle(Delivery("cam", [_event(EventKind.APPEARED, now - 1000 + i, 100 + i, paths[-1])]))
        store._next_retention = 0.0  # the once-a-minute check is due now
        store.handle(Delivery("cam", []))
        assert store.used_bytes() <= 1e6
        kept = [p for p in paths if Path(p).exists()]
        assert 5 <= len(kept) < 10 and kept == paths[-len(kept) :]  # the newest ones
        assert sorted(r.snapshot for r in EventStore(size_cfg.path).query(limit=100)) == sorted(kept)
        assert Path(foreign).exists() and Path(shared).exists()
    finally:
        store.close()


def test_clip_ready_marks_the_rows_of_its_events(tmp_path):
    cfg = EventOutputs.model_validate({"db": str(tmp_path / "ev.db")}).db
    assert cfg is not None
    store = EventStoreConsumer(cfg)
    try:
        now = time.time()
        a, b, other = (_event(EventKind.CROSSED, now + i, i, line="gate", direction="in") for i in range(3))
        store.handle(Delivery("cam", [a, b, other]))
        clip = tmp_path / "clips" / "cam-1.mp4"
        clip.parent.mkdir()
        clip.write_bytes(b"\0" * 4096)
        store.clip_ready("cam", str(clip), [a, b])
        rows = {r.data["track_id"]: r for r in EventStore(cfg.path).query()}
        assert rows[0].clip == rows[1].clip == str(clip) and rows[0].clip_ready and rows[1].clip_ready
        assert rows[2].clip is None and not rows[2].clip_ready
        with sqlite3.connect(cfg.path) as db:
            assert db.execute("SELECT bytes, ready FROM files WHERE path = ?", (str(clip),)).fetchone() == (4096, 1)
        db.close()
    finally:
        store.close()


def test_retention_keeps_a_clip_until_it_is_complete(tmp_path):
    """A clip announced on an event (Event.clip, set before delivery) but not complete is never deleted, even
    when its rows age out; once complete (clip_ready) with no row left, it goes."""
    cfg = EventOutputs.model_validate({"db": {"path": str(tmp_path / "ev.db"), "max_age_days": 1}}).db
    assert cfg is not None
    clip = tmp_path / "clips" / "cam-7.mp4"
    old = _event(EventKind.CROSSED, time.time() - 2 * 86400, 7, line="gate", direction="in")
    old.clip = str(clip)  # the field h3 adds to Event (the shared clip contract)
    store = EventStoreConsumer(cfg)
    store.handle(Delivery("cam", [old]))
    assert EventStore(cfg.path).query()[0].clip == str(clip)
    store._retention()  # the old row goes; the clip is still being written (not on disk yet)
    assert EventStore(cfg.path).count() == 0
    clip.parent.mkdir()
    clip.write_bytes(b"\0" * 1024)
    kept = tmp_path / "clips" / "someone-elses.mp4"
    kept.write_bytes(b"\0" * 1024)
    store.clip_ready("cam", str(clip), [old])  # complete now, and no row points to it: deleted
    store.close()
    assert not clip.exists() and kept.exists()


def test_bad_store_paths_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match="existing folder"):
        EventStoreConsumer(EventOutputs.model_validate({"db": str(tmp_path / "nope" / "ev.db")}).db)
    (tmp_path / "text.db").write_text("not a database\n" * 100)
    with pytest.raises(ConfigError, match="cannot open the event store"):
        EventStoreConsumer(EventOutputs.model_validate({"db": str(tmp_path / "text.db")}).db)
    with pytest.raises(ConfigError, match="no event store"):
        EventStore(tmp_path / "missing.db")
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE accounts (id INTEGER)")
    db.close()
    with pytest.raises(ConfigError, match="not an event store"):
        EventStoreConsumer(EventOutputs.model_validate({"db": str(other)}).db)
    with sqlite3.connect(other) as db:  # left as it was
        assert [r[0] for r in db.execute("SELECT name FROM sqlite_master")] == ["accounts"]
    db.close()


def test_the_ui_finds_its_stores_from_events_db_and_the_config(tmp_path):
    from yolovino.cli.config import UsageError, build_config

    given = tmp_path / "given.db"
    EventStoreConsumer(EventOutputs.model_validate({"db": str(given)}).db).close()
    cams = tmp_path / "cams.yaml"
    cams.write_text(
        f"sources:\n  - url: a.mp4\n    analytics: {{events: {{db: {tmp_path / 'cam.db'}}}}}\n  - url: b.mp4\n"
    )
    ui = build_config(["--model", str(tmp_path), "--events-db", str(given), "--config", str(cams)]).ui
    assert ui is not None and ui.event_stores == [given.resolve(), (tmp_path / "cam.db").resolve()]
    with pytest.raises(UsageError, match="--events-db .*no such file"):
        build_config(["--model", str(tmp_path), "--events-db", str(tmp_path / "missing.db")])
    (tmp_path / "text.db").write_text("not a database\n" * 100)
    with pytest.raises(UsageError, match="--events-db .*text.db: not an event store"):
        build_config(["--model", str(tmp_path), "--events-db", str(tmp_path / "text.db")])
    with pytest.raises(UsageError, match="--events-db is for the UI"):
        build_config(["--headless", "--model", str(tmp_path), "--source", "a.mp4", "--events-db", str(given)])
