"""Prometheus metrics of the analytics stage, as a prometheus_client Collector on a registry the caller owns.

    registry = CollectorRegistry()                    # or the app's registry
    register_analytics(analytics, registry)
    # exposed with prometheus_client.generate_latest(registry) / start_http_server(..., registry=registry)

Read at scrape time from `Analytics.snapshot()` and the event hub's consumer stats (nothing is counted twice
and the pipeline thread does no extra work). Labels: source, zone / line, class, direction, event kind,
consumer. Counter values are cumulative since start; occupancy and active tracks are gauges.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from yolovino.inference.analytics.stage import Analytics


class AnalyticsCollector(Collector):
    def __init__(self, analytics: Analytics):
        self.analytics = analytics

    def collect(self) -> Iterator[Metric]:
        snap = self.analytics.snapshot()
        active = GaugeMetricFamily("yolo_tracks_active", "Tracks alive now (seen or briefly lost)", labels=["source"])
        tracks = CounterMetricFamily(
            "yolo_tracks_ended", "Tracks ended, by their majority class", labels=["source", "class"]
        )
        events = CounterMetricFamily("yolo_events", "Analytics events raised, by kind", labels=["source", "kind"])
        resets = CounterMetricFamily(
            "yolo_tracker_resets", "Tracker restarts (reconnect or stream jump)", labels=["source"]
        )
        crossings = CounterMetricFamily(
            "yolo_line_crossings",
            "Line crossings by class and direction",
            labels=["source", "line", "class", "direction"],
        )
        entries = CounterMetricFamily(
            "yolo_zone_entries", "Tracks that entered a zone", labels=["source", "zone", "class"]
        )
        exits = CounterMetricFamily("yolo_zone_exits", "Tracks that left a zone", labels=["source", "zone", "class"])
        occupancy = GaugeMetricFamily(
            "yolo_zone_occupancy", "Tracks inside a zone now", labels=["source", "zone", "class"]
        )
        for source, s in snap.items():
            active.add_metric([source], s["tracks_active"])
            resets.add_metric([source], s["resets"])
            for label, n in s["tracks_total"].items():
                tracks.add_metric([source, label], n)
            for kind, n in s["events_total"].items():
                events.add_metric([source, kind], n)
            for r in s["regions"]:
                if r.kind == "line":
                    for direction, counts in (("in", r.crossed_in), ("out", r.crossed_out)):
                        for label, n in counts.items():
                            crossings.add_metric([source, r.name, label, direction], n)
                else:
                    for family, counts in ((entries, r.entries), (exits, r.exits), (occupancy, r.occupancy)):
                        for label, n in counts.items():
                            family.add_metric([source, r.name, label], n)
        yield from (active, tracks, events, resets, crossings, entries, exits, occupancy)
        hub = self.analytics.hub
        if hub is not None:
            sent = CounterMetricFamily("yolo_event_sink_sent", "Events delivered to a consumer", labels=["consumer"])
            dropped = CounterMetricFamily(
                "yolo_event_sink_dropped", "Events dropped: the consumer's queue was full", labels=["consumer"]
            )
            failed = CounterMetricFamily(
                "yolo_event_sink_failed", "Events a consumer failed to deliver", labels=["consumer"]
            )
            up = GaugeMetricFamily(
                "yolo_event_sink_up", "1 while the consumer's last delivery worked", labels=["consumer"]
            )
            for name, st in hub.stats().items():
                sent.add_metric([name], st["sent"])
                dropped.add_metric([name], st["dropped"])
                failed.add_metric([name], st["failed"])
                up.add_metric([name], int(st["up"]))
            yield from (sent, dropped, failed, up)


def register_analytics(analytics: Analytics, registry: CollectorRegistry) -> AnalyticsCollector:
    collector = AnalyticsCollector(analytics)
    registry.register(collector)
    return collector
