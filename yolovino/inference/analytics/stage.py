"""The analytics stage between results and annotation: tracker -> zones / lines -> events, per source.

    analytics = Analytics({"door": cfg}, hub=EventHub.build(...))   # cfg: analytics_config.AnalyticsConfig
    Pipeline(engine, sources, sinks, annotator, analytics=analytics)
    ...
    analytics.close()                                # ends live tracks ("closed") and flushes the event sinks

`process(source, frame, results)` (the pipeline's `ResultsStage` protocol) returns the results with track
IDs (or the tracker's carried boxes on frames the detector skipped) and a FrameAnalytics: the frame's
events, the counts and what to draw. State is per source and never crosses cameras; a reconnect of the
source or a jump in its stream time (backwards, or a gap over `reset_gap_s`) ends every track and starts
the tracker afresh, so a stale track never jumps onto a new scene. Counts are cumulative and survive that.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from yolovino.inference.analytics.config import AnalyticsConfig
from yolovino.inference.analytics.filters import ObjectFilter, apply_filters, resolve_filters
from yolovino.inference.analytics.geometry import to_pixels
from yolovino.inference.analytics.lines import LineCounter, LineSpec
from yolovino.inference.analytics.speed import SpeedMeter
from yolovino.inference.analytics.tracker import Track, Tracker, anchor_points
from yolovino.inference.analytics.zones import Hit, ZoneCounter, ZoneSpec
from yolovino.inference.core.events import Event, EventKind, FrameAnalytics, RegionCounts, Scene
from yolovino.inference.core.motion import TrackNeeds
from yolovino.inference.core.results import Frame, Results, label_for

log = logging.getLogger(__name__)

STILL_FRACTION = 0.1  # a stationary track's anchor stays within this fraction of its box size
# the motion gate (track_needs): a moving track is detected again before it moved CARRY_FRACTION of its size
# (its carried box then still overlaps the detection with IoU >= 0.5); motion within PAD_FRACTION of its size
# plus LAG_S of its travel around its box is its own (the gate decides while earlier frames are in flight), and
# so is the way it came over the last SWEPT_S (a running-average background keeps a fading ghost of a large,
# contrasting object for a second or two after it passed: the motion detector's alpha)
CARRY_FRACTION = 0.3
PAD_FRACTION = 0.25
LAG_S = 0.5
SWEPT_S = 2.0


class SourceAnalytics:
    """Tracker, zones, lines and event making of one source."""

    def __init__(self, source_id: str, cfg: AnalyticsConfig, fps: float | None = None):
        self.source_id, self.cfg = source_id, cfg
        assert cfg.tracker is not None, "SourceAnalytics needs tracking (parse_analytics checks this)"
        self.tracker = Tracker(cfg.tracker, fps, cfg.anchor)
        self.zones = [ZoneCounter(z, cfg.min_frames) for z in cfg.zones]
        self.lines = [LineCounter(ln, cfg.min_frames) for ln in cfg.lines]
        self.last_t: float | None = None
        self.reconnects: int | None = None
        self.resets = 0
        self.events_total: dict[str, int] = {}
        self.tracks_total: dict[str, int] = {}
        self.names: dict[int, str] = {}
        self.filters: dict[int | None, ObjectFilter] = {}
        self.frame_hw: tuple[int, int] | None = None
        self.speed = SpeedMeter(cfg.speed) if cfg.speed is not None else None

    def regions(self) -> list[ZoneCounter | LineCounter]:
        return [*self.zones, *self.lines]

    def set_geometry(self, zones: tuple[ZoneSpec, ...], lines: tuple[LineSpec, ...]) -> None:
        """New zones and lines (the UI editor): their counts start at zero."""
        self.cfg = self.cfg.model_copy(update={"zones": zones, "lines": lines})
        self.zones = [ZoneCounter(z, self.cfg.min_frames) for z in zones]
        self.lines = [LineCounter(ln, self.cfg.min_frames) for ln in lines]

    def process(self, frame: Frame, results: Results, reconnects: int) -> tuple[Results, FrameAnalytics]:
        t = frame.pts if frame.pts is not None else frame.captured_at
        events: list[Event] = []
        if results.names is not self.names:
            self.names = results.names
            self.filters = resolve_filters(self.cfg.filters, self.names)
        if self.filters and not results.carried:
            results = apply_filters(results, self.filters)  # before tracking: a filtered box never gets an ID
        jumped = self.last_t is not None and (t < self.last_t or t - self.last_t > self.cfg.reset_gap_s)
        if jumped or (self.reconnects is not None and reconnects != self.reconnects):
            why = "reconnect" if reconnects != self.reconnects else f"stream time jump {self.last_t:.2f} -> {t:.2f} s"
            log.info("%s: tracker reset (%s)", self.source_id, why)
            events += self._end_all(frame, self.last_t if self.last_t is not None else t, "reset")
            self.tracker.reset()
            self.resets += 1
        self.reconnects, self.last_t, self.frame_hw = reconnects, t, results.frame_shape
        known = set(self.tracker.tracks)
        results = self.tracker.carry(results, t) if results.carried else self.tracker.update(results, t)
        tracks = self.tracker.tracks
        # only confirmed tracks are objects: events, zones and lines (tracker.py: confirm_hits, confirm_score)
        tids = results.track_ids.tolist() if results.track_ids is not None else []
        ids = [tid for tid in tids if tid >= 0 and tracks[tid].confirmed]
        if self.cfg.stationary_s > 0:
            if not results.carried:
                self._stillness(ids, t)
            results = replace(results, stationary=np.array([tid >= 0 and tracks[tid].stationary for tid in tids], bool))
        if self.speed is not None:
            if not results.carried and ids:
                seen = [tracks[tid] for tid in ids]
                self.speed.update(
                    seen, anchor_points(np.stack([tr.box for tr in seen]), self.cfg.anchor), t, results.frame_shape
                )
            nan = float("nan")
            live = [tracks[tid] if tid >= 0 and tracks[tid].confirmed else None for tid in tids]
            results = replace(
                results,
                speed_kmh=np.array(
                    [tr.speed_kmh if tr and tr.speed_kmh is not None else nan for tr in live], np.float32
                ),
                heading_deg=np.array(
                    [tr.heading_deg if tr and tr.heading_deg is not None else nan for tr in live], np.float32
                ),
            )
        for tid in ids:
            if not tracks[tid].announced:
                tracks[tid].announced = True
                events.append(self._event(EventKind.APPEARED, tracks[tid], frame, t))
        if not results.carried:
            alive = self.tracker.alive()
            gone = [tid for tid in known if tid not in alive]
            for track in self.tracker.end(gone):
                events += self._end_track(track, frame, track.last_t, "lost")
        if ids and (self.zones or self.lines):
            events += self._regions(ids, frame, t, results.frame_shape)
        for e in events:
            self.events_total[e.kind.value] = self.events_total.get(e.kind.value, 0) + 1
        counts = [_copy(r.counts) for r in self.regions()]
        return results, FrameAnalytics(
            events, counts, self._scene(ids, results.frame_shape, counts), len(tracks), results.carried
        )

    def _stillness(self, ids: list[int], t: float) -> None:
        """Stationary tracks: those seen now whose anchor stayed within STILL_FRACTION of their box size (the
        larger side) of where their still spell began, for longer than stationary_s. Moving further starts a
        new spell there; frames where a track is not seen (hidden, carried) change nothing."""
        tracks = self.tracker.tracks
        for tid in ids:
            tr = tracks[tid]
            x0, y0, x1, y1 = (float(v) for v in tr.box)
            ax, ay = (x0 + x1) * 0.5, (y1 if self.cfg.anchor == "bottom_center" else (y0 + y1) * 0.5)
            reach = STILL_FRACTION * max(x1 - x0, y1 - y0)
            if tr.still_at is None or (ax - tr.still_at[0]) ** 2 + (ay - tr.still_at[1]) ** 2 > reach * reach:
                tr.still_at, tr.still_since, tr.stationary = (ax, ay), t, False
            elif not tr.stationary and t - tr.still_since >= self.cfg.stationary_s:
                tr.stationary = True

    def _regions(self, ids: list[int], frame: Frame, t: float, frame_hw) -> list[Event]:
        tracks = self.tracker.tracks
        boxes = np.stack([tracks[i].box for i in ids])
        anchors = {a: anchor_points(boxes, a) for a in {r.spec.anchor for r in self.regions()}}
        class_ids = [tracks[i].class_id for i in ids]
        labels = [label_for(self.names, c) for c in class_ids]
        events = []
        for zone in self.zones:
            for hit in zone.update(ids, labels, class_ids, anchors[zone.spec.anchor], t, frame_hw):
                events.append(self._hit(hit, frame, t, zone=zone.spec.name))
        for line in self.lines:
            for hit in line.update(ids, labels, class_ids, anchors[line.spec.anchor], t, frame_hw, self._origin):
                events.append(self._hit(hit, frame, t, line=line.spec.name))
        return events

    def _origin(self, tid: int, anchor: str) -> tuple[float, float] | None:
        """The anchor of the track's first detection (for a line that meets the track only once confirmed)."""
        track = self.tracker.tracks.get(tid)
        if track is None or track.first_box is None:
            return None
        x, y = anchor_points(track.first_box[None], anchor)[0].tolist()
        return x, y

    def _hit(self, hit: Hit, frame: Frame, t: float, **where) -> Event:
        e = self._event(hit.kind, self.tracker.tracks[hit.track_id], frame, t, **where)
        e.direction, e.duration_s = hit.direction, hit.duration_s
        return e

    def _event(self, kind: EventKind, track: Track, frame: Frame, t: float, **extra) -> Event:
        box = tuple(float(v) for v in track.box)
        return Event(
            kind,
            time.time(),
            self.source_id,
            track.id,
            track.class_id,
            label_for(self.names, track.class_id),
            track.score,
            (box[0], box[1], box[2], box[3]),
            frame.index,
            t,
            stationary=track.stationary,
            speed_kmh=track.speed_kmh,
            heading_deg=track.heading_deg,
            **extra,
        )

    def _end_track(self, track: Track, frame: Frame, t: float, reason: str) -> list[Event]:
        out: list[Event] = []
        if not track.announced:
            return out  # never an object: no event in, none out
        for zone in self.zones:
            hit = zone.end(track.id, t)
            if hit is not None:
                e = self._event(EventKind.LEFT, track, frame, t, zone=zone.spec.name, duration_s=hit.duration_s)
                e.reason = reason
                out.append(e)
        leaving = reason == "lost"  # a reset or close ends tracks where they are: they left nothing
        for line in self.lines:
            hit = line.end(track.id, t, self._exit_path(track, line.spec.anchor) if leaving else None)
            if hit is not None:
                out.append(self._event(EventKind.CROSSED, track, frame, t, line=line.spec.name))
                out[-1].direction = hit.direction
        ended = self._event(EventKind.ENDED, track, frame, t, duration_s=track.last_t - track.first_t)
        # counted by the class the track ends with (the majority of its detections): at confirmation a
        # person walking in may still be a "dog" (only legs in view) for a frame or two
        self.tracks_total[ended.label] = self.tracks_total.get(ended.label, 0) + 1
        ended.reason = reason
        out.append(ended)
        return out

    def _exit_path(self, track: Track, anchor: str) -> tuple[tuple[float, float], tuple[float, float]] | None:
        """(last anchor, a point a frame diagonal further along the track's velocity) when its last box
        touches the frame's border and it was moving out through it; None otherwise (lost inside the view)."""
        if self.frame_hw is None or not track.motion.centres:
            return None
        h, w = self.frame_hw
        vx, vy = (float(v) for v in track.motion.velocity())
        x0, y0, x1, y1 = (float(v) for v in track.box)
        edge = 2.0
        out = (x0 <= edge and vx < 0) or (x1 >= w - edge and vx > 0) or (y0 <= edge and vy < 0)
        out = out or (y1 >= h - edge and vy > 0)
        speed = float(np.hypot(vx, vy))
        if not out or speed <= 0:
            return None
        ax, ay = (float(v) for v in anchor_points(track.box[None], anchor)[0])
        far = float(np.hypot(h, w)) / speed
        return (ax, ay), (ax + vx * far, ay + vy * far)

    def _end_all(self, frame: Frame, t: float, reason: str) -> list[Event]:
        out = []
        for track in self.tracker.end(list(self.tracker.tracks)):
            out += self._end_track(track, frame, t, reason)
        return out

    def _scene(self, ids: list[int], frame_hw, counts: list[RegionCounts]) -> Scene:
        def pixels(points) -> list[tuple[int, int]]:
            return [(int(x), int(y)) for x, y in to_pixels(points, frame_hw)]

        zones = [(z.spec.name, pixels(z.spec.points)) for z in self.zones]
        lines = [(ln.spec.name, pixels(ln.spec.points)) for ln in self.lines]
        tracks = self.tracker.tracks
        # live views of the trails (drawn before the next frame changes them): no copy per frame
        trails: dict[int, Sequence[tuple[int, int]]] = {i: tracks[i].trail for i in ids if i in tracks}
        return Scene(zones, lines, trails, counts)

    def close(self, frame: Frame | None) -> list[Event]:
        if frame is None or self.last_t is None:
            return []
        return self._end_all(frame, self.last_t, "closed")


def _copy(c: RegionCounts) -> RegionCounts:
    return RegionCounts(
        c.name, c.kind, dict(c.occupancy), dict(c.entries), dict(c.exits), dict(c.crossed_in), dict(c.crossed_out)
    )


class Analytics:
    """The stage for every source of a pipeline (see the module docstring). Thread-safe: the pipeline calls
    `process`, a metrics scrape reads `snapshot()`, the UI may call `set_geometry` or `set_enabled`."""

    def __init__(self, configs: Mapping[str, AnalyticsConfig] | AnalyticsConfig, hub=None):
        # one config for every source, or one per source id (sources without one pass through untouched)
        self._default = configs if isinstance(configs, AnalyticsConfig) else None
        self._configs = {} if isinstance(configs, AnalyticsConfig) else dict(configs)
        self.hub = hub
        self.enabled = True
        self._state: dict[str, SourceAnalytics] = {}
        self._last_frame: dict[str, Frame] = {}
        self._lock = threading.Lock()
        self._closed = False

    def config_for(self, source_id: str) -> AnalyticsConfig | None:
        cfg = self._configs.get(source_id, self._default)
        return cfg if cfg is not None and cfg.tracking else None

    def process(self, source, frame: Frame, results: Results) -> tuple[Results, FrameAnalytics | None]:
        """One frame of one source (the pipeline's ResultsStage protocol)."""
        with self._lock:
            if not self.enabled or self._closed:
                return results, None
            state = self._state.get(source.id)
            if state is None:
                cfg = self.config_for(source.id)
                if cfg is None:
                    return results, None
                state = self._state[source.id] = SourceAnalytics(source.id, cfg, getattr(source, "fps", None))
            results, info = state.process(frame, results, source.stats.reconnects)
            self._last_frame[source.id] = frame
        if self.hub is not None:
            self.hub.publish(source.id, info, frame)
        return results, info

    def set_geometry(
        self, zones: tuple[ZoneSpec, ...], lines: tuple[LineSpec, ...], source_id: str | None = None
    ) -> None:
        """New zones and lines (the UI editor) for one source, or for every source and the default config;
        the changed sources' counts start at zero, their tracks go on."""
        with self._lock:
            if source_id is None and self._default is not None:
                self._default = self._default.model_copy(update={"zones": zones, "lines": lines})
            targets = [source_id] if source_id is not None else list({*self._configs, *self._state})
            for sid in targets:
                cfg = self._configs.get(sid, self._default)
                if cfg is not None:
                    self._configs[sid] = cfg.model_copy(update={"zones": zones, "lines": lines})
                if sid in self._state:
                    self._state[sid].set_geometry(zones, lines)

    def configure(self, source_id: str, cfg: AnalyticsConfig | None) -> None:
        """Set or drop one source's config (a live reload): its live tracks end (events with reason "closed")
        and a new config starts with fresh tracks."""
        with self._lock:
            state = self._state.pop(source_id, None)
            finals = state.close(self._last_frame.pop(source_id, None)) if state is not None else []
            if cfg is None:
                self._configs.pop(source_id, None)
            else:
                self._configs[source_id] = cfg
        if finals and self.hub is not None:
            self.hub.publish(source_id, FrameAnalytics(finals), None)

    def set_enabled(self, enabled: bool) -> None:
        """Tracking on/off (the UI): off drops every source's state, so on starts with fresh tracks."""
        with self._lock:
            self.enabled = bool(enabled)
            if not enabled:
                self._state.clear()

    def track_needs(self, source_id: str) -> TrackNeeds | None:
        """What this source's tracks ask of the motion gate now (model/motion.py), None without tracks:
        - every frame (interval 0) while a track is new: it is confirmed as with every-frame detection;
        - a track missing from the last detection (it left, it is hidden, the detector missed it once) counts as
          moving but explains no motion: wherever something moves the detector runs at once (it is found again
          under its ID), and while nothing does it runs every moving_interval_s until the track ends (after
          lost_track_s), not on every frame of that wait;
        - while some confirmed track moves, at most the time it takes the fastest of them (relative to its
          size) to move CARRY_FRACTION of its size, so that the tracker's carried box still overlaps the
          next detection well (the gate caps this at its moving_interval_s);
        - every track standing still (a parked car, a person at a table): half the tracker's lost_track_s,
          so that none is lost and comes back under a new ID, while the detector skips most frames.
        Motion inside the tracks' boxes is theirs (a walking person, a car that has just parked and is not
        yet part of the motion detector's background), the boxes widened by a quarter of their size, for
        moving ones by how far they may have moved while the frames in flight were detected, and over the
        way they came in the last SWEPT_S (the ghost they leave in the background)."""
        with self._lock:
            state = self._state.get(source_id)
            if state is None or not self.enabled or not state.tracker.tracks or state.frame_hw is None:
                return None
            seen = state.tracker.last_seen
            interval = state.tracker.config.lost_track_s / 2
            h, w = state.frame_hw
            boxes, moving = [], False
            for tr in state.tracker.tracks.values():
                if not tr.confirmed:
                    return TrackNeeds(0.0)
                if tr.id not in seen:  # its motion is nobody's: where it shows, the detector runs at once
                    moving = True
                    continue
                x0, y0, x1, y1 = (float(v) for v in tr.box)
                size = max(x1 - x0, y1 - y0, 1.0)
                speed = float(np.abs(tr.velocity()).max())  # pixels per second of its fastest edge
                pad = PAD_FRACTION * size
                if speed > STILL_FRACTION * size:
                    interval = min(interval, CARRY_FRACTION * size / speed)
                    pad += speed * LAG_S
                    moving = True
                # and the way it came over the last SWEPT_S: the background still holds its ghost there (the
                # centres are in time order, a jump back in time resets the tracker: newest first, stop at
                # the first one older, not all 64 of every track on every frame)
                cx, cy = (x0 + x1) * 0.5, (y0 + y1) * 0.5
                dx0 = dy0 = dx1 = dy1 = 0.0
                since = tr.last_t - SWEPT_S
                for ct, px, py in reversed(tr.motion.centres):
                    if ct < since:
                        break
                    dx0, dx1 = min(dx0, px - cx), max(dx1, px - cx)
                    dy0, dy1 = min(dy0, py - cy), max(dy1, py - cy)
                box = (x0 + dx0 - pad) / w, (y0 + dy0 - pad) / h, (x1 + dx1 + pad) / w, (y1 + dy1 + pad) / h
                boxes.append(box)
            return TrackNeeds(interval, moving, tuple(boxes))

    def snapshot(self) -> dict[str, dict]:
        """Per source: counts, tracks active, totals (for metrics and the UI)."""
        with self._lock:
            return {
                sid: {
                    "tracks_active": len(s.tracker.tracks),
                    "tracks_total": dict(s.tracks_total),
                    "events_total": dict(s.events_total),
                    "resets": s.resets,
                    "regions": [_copy(r.counts) for r in s.regions()],
                }
                for sid, s in self._state.items()
            }

    def close(self) -> list[Event]:
        """End every live track (events with reason "closed", also returned), then flush and close the
        event sinks. Idempotent."""
        with self._lock:
            if self._closed:
                return []
            self._closed = True
            finals = [(sid, s.close(self._last_frame.get(sid))) for sid, s in self._state.items()]
        if self.hub is not None:
            for sid, events in finals:
                if events:
                    self.hub.publish(sid, FrameAnalytics(events), None)
            self.hub.close()
        return [e for _, events in finals for e in events]
