"""The `analytics:` configuration: every mistake is one line naming its key path; the headless CLI turns it
into exit code 2 before anything runs; a valid one runs end to end (per-frame JSONL with track IDs, an events
file, Prometheus counters)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from yolovino.inference.analytics.config import parse_analytics, resolve_classes
from yolovino.inference.core.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
SQUARE = [[0.1, 0.1], [0.5, 0.1], [0.5, 0.5], [0.1, 0.5]]
BAD = [
    ({"zones": [{"points": [[0.1, 0.1], [0.5, 0.1]]}]}, "analytics.zones[0].points", "at least 3 points"),
    (
        {"zones": [{"points": [[0.1, 0.1], [0.5, 0.1], [640, 360]]}]},
        "analytics.zones[0].points",
        "point 2: (640, 360) is out of the frame",
    ),
    (
        {"zones": [{"points": [[0.1, 0.1], [0.5, 0.5], [0.5, 0.1], [0.1, 0.5]]}]},
        "analytics.zones[0].points",
        "crosses itself",
    ),
    ({"zones": [{"points": [[0.1, 0.1], [0.2, 0.2], [0.3, 0.3]]}]}, "analytics.zones[0].points", "no area"),
    (
        {"zones": [{"points": [[0.0, 0.5], [float("inf"), 0.5], [0.3, 0.3]]}]},
        "analytics.zones[0].points[1][0]",
        "finite",
    ),
    ({"lines": [{"points": [[0.0, 0.5], [float("nan"), 0.5]]}]}, "analytics.lines[0].points[1][0]", "finite"),
    ({"zones": [{"points": [[0.5, 0.5]] * 1001}]}, "analytics.zones[0].points", "at most 1000 points"),
    (
        {"zones": [{"points": SQUARE, "colour": "red"}]},
        "analytics.zones[0].colour",
        "unknown key (allowed: name, points, classes, anchor, dwell_s, loitering_s, inertia)",
    ),
    (
        {"zones": [{"points": SQUARE}, {"points": SQUARE, "name": "zone0"}]},
        "analytics.zones",
        "name 'zone0' is used twice (items 0 and 1)",
    ),
    ({"zones": [{"points": SQUARE, "dwell_s": -1}]}, "analytics.zones[0].dwell_s", "greater than or equal to 0"),
    ({"lines": [{"points": [[0.2, 0.5]]}]}, "analytics.lines[0].points", "at least 2 points"),
    ({"lines": [{"points": [[0.2, 0.5], [0.2, 0.5]]}]}, "analytics.lines[0].points", "the same"),
    (
        {"lines": [{"points": [[0.1, 0.5], [0.4, 0.5], [0.4, 0.5], [0.4, 0.9]]}]},
        "analytics.lines[0].points",
        "points 1 and 2 are the same",
    ),
    (
        {"lines": [{"points": [[0.1, 0.5], [0.6, 0.5], [0.3, 0.5]]}]},
        "analytics.lines[0].points",
        "the line folds back on itself at point 1",
    ),
    (
        {"lines": [{"points": [[0.1, 0.5], [0.6, 0.5], [0.6, 0.9], [0.3, 0.2]]}]},
        "analytics.lines[0].points",
        "the line crosses itself",
    ),
    ({"lines": [{"points": [[0.2, "a"], [0.3, 0.5]]}]}, "analytics.lines[0].points[0][1]", "a valid number, got 'a'"),
    ({"tracker": "deepsort"}, "analytics.tracker.kind", "'bytetrack', 'sort' or 'ocsort', got 'deepsort'"),
    ({"tracker": {"kind": "sort", "lost_track_s": "long"}}, "analytics.tracker.lost_track_s", "a valid number"),
    (
        {"tracker": "off", "lines": [{"points": [[0, 0.5], [1, 0.5]]}]},
        "analytics",
        "tracker: zones, lines and detect_every > 1 need tracking",
    ),
    ({"detect_every": 0}, "analytics.detect_every", "greater than or equal to 1"),
    ({"anchor": "feet"}, "analytics.anchor", "'bottom_center' or 'center', got 'feet'"),
    ({"events": {"mqtt": {"port": 1883}}}, "analytics.events.mqtt.host", "Field required"),
    ({"events": {"mqtt": {"host": "h", "topic": "a/#"}}}, "analytics.events.mqtt.topic", "wildcards"),
    ({"events": {"webhook": "ftp://x"}}, "analytics.events.webhook.url", "http:// or https://"),
    ({"events": {"kinds": ["crossed"]}}, "analytics.events.kinds[0]", "got 'crossed'"),
    ({"event": {}}, "analytics.event", "unknown key (allowed: tracker, detect_every,"),
    ([1, 2], "analytics", "expected a mapping"),
]


@pytest.mark.parametrize("raw,path,message", BAD, ids=[f"{b[1]}:{b[2]}" for b in BAD])
def test_bad_analytics_config_names_the_key_path(raw, path, message):
    with pytest.raises(ConfigError) as info:
        parse_analytics(raw, "analytics")
    text = str(info.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text, text


def test_defaults_and_class_names():
    cfg = parse_analytics(True)
    assert cfg.tracking and cfg.tracker.kind == "bytetrack" and cfg.detect_every == 1 and not cfg.zones
    cfg = parse_analytics({"lines": [{"points": [[0, 0.5], [1, 0.5]], "classes": ["Car", 0]}]}, "sources[1].analytics")
    names = {0: "person", 2: "car"}
    assert resolve_classes(cfg, names).lines[0].class_ids == (2, 0)
    bad = parse_analytics({"zones": [{"points": SQUARE, "classes": ["person", "unicorn"]}]})
    with pytest.raises(
        ConfigError, match=r"^sources\[1\]\.analytics\.zones\[0\]\.classes\[1\]: unknown class 'unicorn'"
    ):
        resolve_classes(bad, names, "sources[1].analytics")


def run_app(args, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "app.py", *map(str, args)], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


def write_yaml(path: Path, clip: Path, analytics) -> Path:
    path.write_text(yaml.safe_dump({"sources": [{"url": str(clip), "name": "cam", "analytics": analytics}]}))
    return path


@pytest.mark.parametrize(
    "analytics,expected",
    [
        (
            {"zones": [{"points": [[0.1, 0.1], [0.5, 0.1]]}]},
            r"sources\[0\]\.analytics\.zones\[0\]\.points: a zone needs at least 3",
        ),
        (
            {"lines": [{"points": [[0, 0.5], [1, 0.5]], "classes": ["unicorn"]}]},
            r"sources\[0\]\.analytics\.lines\[0\]\.classes\[0\]: unknown class",
        ),
    ],
    ids=["short-zone", "unknown-class"],
)
def test_headless_cli_refuses_bad_analytics_in_one_line(tmp_path, person_clip, detect_ir, analytics, expected):
    import re

    cfg = write_yaml(tmp_path / "cams.yaml", person_clip, analytics)
    proc = run_app(["--headless", "--model", detect_ir, "--config", cfg])
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert re.search(expected, last), last


def test_headless_run_with_analytics_writes_ids_events_and_counters(tmp_path, person_clip, detect_ir):
    """A 6 s clip, a broker that is not there (events are queued and dropped, the video runs), per-frame
    JSONL with track IDs and an events file with one line per event."""
    from rtsp_control import free_port

    frames_file, events_file = tmp_path / "frames.jsonl", tmp_path / "events.jsonl"
    analytics = {
        "zones": [{"name": "all", "points": [[0, 0], [1, 0], [1, 1], [0, 1]], "classes": ["person"]}],
        "events": {"jsonl": str(events_file), "mqtt": {"host": "127.0.0.1", "port": free_port()}},
    }
    cfg = write_yaml(tmp_path / "cams.yaml", person_clip, analytics)
    proc = run_app(["--headless", "--model", detect_ir, "--config", cfg, "--jsonl", frames_file])
    assert proc.returncode == 0, proc.stderr[-3000:]
    frames = [json.loads(line) for line in frames_file.read_text().splitlines()]
    ids = {d["track_id"] for f in frames for d in f["detections"] if "track_id" in d}
    assert ids and all(isinstance(i, int) and i > 0 for i in ids)
    events = [json.loads(line) for line in events_file.read_text().splitlines()]
    kinds = {e["kind"] for e in events}
    assert {"track_appeared", "zone_entered", "track_ended"} <= kinds, kinds
    assert all(e["source"] == "cam" for e in events)
    assert len(events) < len(frames)  # one line per event, not per frame


def test_prometheus_collector_on_a_callers_registry():
    import numpy as np
    from prometheus_client import CollectorRegistry, generate_latest

    from yolovino.inference.analytics.metrics import register_analytics
    from yolovino.inference.analytics.stage import Analytics
    from yolovino.inference.core.results import Frame, Results
    from yolovino.inference.service.metrics import Metrics
    from yolovino.inference.sources import SourceStats

    class Cam:
        id, fps, stats = "gate", 10.0, SourceStats()

    cfg = resolve_classes(parse_analytics({"lines": [{"name": "l", "points": [[0.5, 0], [0.5, 1]]}]}), {0: "person"})
    analytics = Analytics(cfg)
    registry = CollectorRegistry()
    register_analytics(analytics, registry)
    img = np.zeros((100, 200, 3), np.uint8)
    for k in range(30):
        x = 20 + 6 * k
        r = Results(
            np.array([[x - 5, 20, x + 5, 60]], np.float32),
            np.array([0.9], np.float32),
            np.array([0], np.int32),
            {0: "person"},
            (100, 200),
        )
        analytics.process(Cam, Frame(img, k, "gate", k / 10, 0.0), r)
    text = generate_latest(registry).decode()
    assert 'yolo_line_crossings_total{class="person",direction="out",line="l",source="gate"} 1.0' in text
    assert 'yolo_tracks_active{source="gate"} 1.0' in text
    assert 'yolo_events_total{kind="line_crossed",source="gate"} 1.0' in text
    assert "yolo_line_crossings_total" in Metrics(registry=registry).render()  # served by today's endpoint


def test_speed_calibration_needs_one_ground_and_four_points_in_the_frame():
    points = [[0.3, 0.55], [0.7, 0.55], [0.95, 0.95], [0.05, 0.95]]
    cfg = parse_analytics({"speed": {"points": points, "size_m": [10, 20]}})
    assert cfg.speed is not None and cfg.speed.ground() == [(0, 0), (10, 0), (10, 20), (0, 20)]
    ground = [[0, 0], [10, 0], [10, 20], [0, 20]]
    assert parse_analytics({"speed": {"points": points, "ground_m": ground}}).speed == cfg.speed.model_copy(
        update={"size_m": None, "ground_m": tuple(tuple(map(float, p)) for p in ground)}
    )
    with pytest.raises(ConfigError, match="size_m .* or ground_m"):
        parse_analytics({"speed": {"points": points}})
    with pytest.raises(ConfigError, match="size_m .* or ground_m"):
        parse_analytics({"speed": {"points": points, "size_m": [10, 20], "ground_m": ground}})
    with pytest.raises(ConfigError, match=r"speed\.points"):
        parse_analytics({"speed": {"points": points[:3], "size_m": [10, 20]}})
    with pytest.raises(ConfigError, match="plane"):
        parse_analytics({"speed": {"points": [[0.1, 0.1], [0.2, 0.2], [0.3, 0.3], [0.1, 0.9]], "size_m": [1, 1]}})
    with pytest.raises(ConfigError, match=r"speed\.size_m"):
        parse_analytics({"speed": {"points": points, "size_m": [0, 20]}})
