"""The JSON messages MQTT and the webhook send: one per event, and a follow-up when the event's clip is complete.

An event message is `Event.to_dict()`: it names the event's snapshot (`snapshot`, a JPEG written before the
event is delivered) and clip (`clip`, the final path of the clip that will hold it; the file appears once the
clip is complete, announced by the follow-up). With `embed_snapshot: true` the snapshot itself travels in the
message, for consumers without access to our files:

    "snapshot_jpeg": "<base64 of the JPEG file>"

bounded by `embed_max_kb`: a larger snapshot (or one that cannot be read) is not embedded, and the message
says why instead, `"snapshot_embed_error": "too large (312 KiB > 256 KiB)"`; its path stays in `snapshot`.

The follow-up (MQTT `<topic>/<source>/clips`, the webhook's URL) when a clip is complete on disk:

    {"type": "clip_ready", "source": "door", "clip": "clips/door/....mp4", "bytes": 812345,
     "events": [<the event messages of the events the clip holds, without embedded snapshots>]}
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Sequence

from yolovino.inference.core.events import Event


class SnapshotEmbedder:
    """Reads and base64-encodes snapshots for messages, at most `max_bytes` each; keeps the last one read
    (the events of one frame share one snapshot, so a frame's messages read its file once)."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._last: tuple[str, dict] | None = None

    def fields(self, path: str) -> dict:
        """{"snapshot_jpeg": base64} or {"snapshot_embed_error": why}."""
        if self._last is not None and self._last[0] == path:
            return self._last[1]
        try:
            with open(path, "rb") as fh:
                data = fh.read(self.max_bytes + 1)
            if len(data) > self.max_bytes:
                size = os.path.getsize(path)
                out = {"snapshot_embed_error": f"too large ({size // 1024} KiB > {self.max_bytes // 1024} KiB)"}
            else:
                out = {"snapshot_jpeg": base64.b64encode(data).decode("ascii")}
        except OSError as exc:
            out = {"snapshot_embed_error": f"not readable ({exc.strerror or type(exc).__name__})"}
        self._last = (path, out)
        return out


def event_message(event: Event, embedder: SnapshotEmbedder | None = None) -> dict:
    """The message of one event; with an embedder, its snapshot embedded (see the module docstring)."""
    out = event.to_dict()
    if embedder is not None and event.snapshot:
        out.update(embedder.fields(event.snapshot))
    return out


def clip_message(source: str, path: str, events: Sequence[Event]) -> dict:
    """The follow-up of a clip complete at `path` holding `events`."""
    try:
        size: int | None = os.path.getsize(path)
    except OSError:
        size = None
    out: dict = {"type": "clip_ready", "source": source, "clip": str(path)}
    if size is not None:
        out["bytes"] = size
    out["events"] = [e.to_dict() for e in events]
    return out


def dumps(message: dict) -> str:
    return json.dumps(message, separators=(",", ":"))
