"""Run by tests/test_event_store.py as a subprocess that the test kills with SIGKILL: a burst of events through
the real EventHub into the `db` consumer, and a reader that prints the events it sees committed.

    python tests/event_store_burst.py STORE.db

stdout: `acked <frame_index> <frame_index> ...` lines, flushed, each naming the frames whose two events a
read-only connection found committed in the store (what "acknowledged" means here). The publisher goes on
until killed (bounded: 10**6 frames).
"""

from __future__ import annotations

import sys
import threading
import time
from contextlib import closing

from yolovino.inference.core.events import Event, EventKind, FrameAnalytics
from yolovino.inference.notify.config import EventOutputs
from yolovino.inference.notify.eventdb import EventStore
from yolovino.inference.notify.hub import EventHub


def events_of(i: int) -> list[Event]:
    now = time.time()
    box = (float(i % 600), 10.0, float(i % 600) + 40.0, 90.0)
    return [
        Event(EventKind.ENTERED, now, "burst", i, 0, "person", 0.9, box, i, i / 25, zone="door"),
        Event(EventKind.CROSSED, now, "burst", i, 0, "person", 0.8, box, i, i / 25, line="gate", direction="in"),
    ]


def reader(path: str, started: threading.Event) -> None:
    started.wait()
    last = 0
    for _ in range(10**6):
        try:
            store = EventStore(path)
            with closing(store.connect()) as conn:
                rows = conn.execute("SELECT id, frame_index FROM events WHERE id > ? ORDER BY id", (last,)).fetchall()
        except Exception:  # noqa: BLE001 - the file may not exist yet
            time.sleep(0.01)
            continue
        if rows:
            last = rows[-1][0]
            print("acked " + " ".join(str(f) for _, f in rows), flush=True)
        time.sleep(0.005)


def main() -> None:
    path = sys.argv[1]
    hub = EventHub.build({"burst": EventOutputs.model_validate({"db": path, "queue_size": 200})})
    started = threading.Event()
    threading.Thread(target=reader, args=(path, started), daemon=True).start()
    for i in range(10**6):
        hub.publish("burst", FrameAnalytics(events=events_of(i)), None)
        started.set()
        if i % 50 == 0:
            time.sleep(0.001)  # a burst, but one the writer mostly keeps up with


if __name__ == "__main__":
    main()
