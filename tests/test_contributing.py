"""The worked examples of CONTRIBUTING.md run as written: each fenced block after an `<!-- example: NAME -->`
marker is executed here and then used the way the guide says."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from yolovino.inference.analytics.config import parse_analytics, resolve_classes
from yolovino.inference.analytics.stage import Analytics
from yolovino.inference.core.results import Frame, Results
from yolovino.inference.notify.base import CONSUMERS
from yolovino.inference.notify.hub import EventHub
from yolovino.inference.sources import SourceStats

GUIDE = Path(__file__).resolve().parents[1] / "CONTRIBUTING.md"


def example(name: str) -> dict:
    """Run the guide's example NAME in a fresh namespace and return that namespace."""
    match = re.search(rf"<!-- example: {name} -->\s*```python\n(.*?)```", GUIDE.read_text(), re.S)
    assert match, f"CONTRIBUTING.md has no example {name!r}"
    namespace: dict = {"__name__": f"contributing_{name.replace('-', '_')}"}
    exec(compile(match.group(1), f"CONTRIBUTING.md:{name}", "exec"), namespace)
    return namespace


class Cam:
    id, fps, stats = "door", 10.0, SourceStats()


def test_event_consumer_example(tmp_path):
    example("event-consumer")
    try:
        assert "csv" in CONSUMERS
        path = tmp_path / "crossings.csv"
        cfg = parse_analytics(
            {
                "lines": [{"name": "gate", "points": [[0.5, 0.0], [0.5, 1.0]]}],
                "events": {"csv": {"path": str(path)}, "kinds": ["line_crossed"]},
            }
        )
        cfg = resolve_classes(cfg, {0: "person"})
        hub = EventHub.build({"door": cfg.events})
        analytics = Analytics({"door": cfg}, hub=hub)
        image = np.full((400, 800, 3), 90, np.uint8)
        for k in range(40):  # a person walking left to right across the vertical line at x = 400
            x = 100 + 16 * k
            results = Results(
                np.array([[x - 20, 150, x + 20, 250]], np.float32),
                np.array([0.9], np.float32),
                np.array([0], np.int32),
                {0: "person"},
                (400, 800),
            )
            analytics.process(Cam(), Frame(image, k, "door", k / 10, 0.0), results)
        analytics.close()  # flushes the consumers
        rows = list(csv.reader(path.open()))
        assert [r[1:] for r in rows] == [["door", "line_crossed", rows[0][3], "person", "gate", "out"]], rows
        assert int(rows[0][3]) > 0
    finally:
        CONSUMERS.pop("csv", None)
