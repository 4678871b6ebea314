"""The headless YAML schema (inference/service/settings.py): every mistake is an error naming the key's path, the
per-source keys reach the running sources, `analytics:` passes through to its hook untouched, and `${VAR}`
takes secrets from the environment."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from yolovino.inference.analytics.config import AnalyticsConfig
from yolovino.inference.service.settings import ConfigError, config_schema, expand_env, load_settings, parse_settings

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "doc, needle",
    [
        ({"sources": [{"url": "a", "conf": "high"}]}, "sources[0].conf: Input should be a valid number, got 'high'"),
        ({"sources": ["a", {"url": "b", "fps": 3}]}, "sources[1].fps: unknown key (allowed: url, name,"),
        ({"sources": [{"url": "a", "classes": [0, 1.5]}]}, "sources[0].classes: class ids or names expected, got 1.5"),
        ({"serve": {"port": "x"}, "sources": ["a"]}, "serve.port: Input should be a valid integer, got 'x'"),
        ({"record": {"dir": "/r", "keep": 3}, "sources": ["a"]}, "record.keep: unknown key"),
        ({"sources": [{"url": "a", "live": "yes"}]}, "sources[0].live: Input should be a valid boolean"),
        ({"sources": [{"name": "x"}]}, "sources[0].url: Field required"),
        ({"sources": [{"url": "a", "name": "d"}, {"url": "b", "name": "d"}]}, "sources[1]: name 'd' is also used"),
        ({"sources": "a.mp4"}, "sources: Input should be a valid list"),
        ({"conf": 1.5, "sources": ["a"]}, "conf: Input should be less than or equal to 1, got 1.5"),
        ({"sourcse": ["a"]}, "sourcse: unknown key"),
    ],
)
def test_mistakes_name_the_key_path(doc, needle):
    with pytest.raises(ConfigError) as info:
        parse_settings(doc, "cams.yaml")
    text = str(info.value)
    assert text.startswith("cams.yaml: ") and needle in text, text
    assert "\n" not in text


def test_per_source_keys_and_typed_analytics(tmp_path):
    """A source's `analytics:` is validated with the file, into the analytics stage's own config type."""
    zones = {"zones": [{"name": "door", "points": [[0.1, 0.1], [0.5, 0.1], [0.5, 0.9]]}], "lines": []}
    cfg = tmp_path / "cams.yaml"
    cfg.write_text(
        "conf: 0.3\nrecord: {dir: rec, segment_seconds: 10, max_size_mb: 500}\nsources:\n"
        "  - url: a.mp4\n    name: door\n    conf: 0.5\n    classes: [person, 2]\n    rect: false\n"
        "    device: CPU\n    record: true\n    serve: false\n    stall_timeout: 4\n"
        f"    analytics: {zones}\n"
        "  - b.mp4\n"
    )
    s = load_settings(cfg)
    door, b = s.sources
    assert (door.conf, door.classes, door.rect, door.device, door.record, door.serve) == (
        0.5,
        ("person", "2"),
        False,
        "CPU",
        True,
        False,
    )
    assert door.stall_timeout == 4 and b.url == "b.mp4" and b.conf is None and b.analytics is None
    assert isinstance(door.analytics, AnalyticsConfig) and door.analytics.tracking
    assert [z.name for z in door.analytics.zones] == ["door"] and door.analytics.zones[0].points[2] == (0.5, 0.9)
    assert s.record is not None and s.record.max_size_mb == 500


@pytest.mark.parametrize(
    "analytics, needle",
    [
        (
            {"zones": [{"points": [[0, 0]]}]},
            "sources[1].analytics.zones[0].points: Value error, a zone needs at least 3",
        ),
        ({"zones": [{"polygon": [[0, 0]]}]}, "sources[1].analytics.zones[0].polygon: unknown key (allowed: name,"),
        ({"lines": [{"points": [[0, 0.5], [float("nan"), 0.5]]}]}, "sources[1].analytics.lines[0].points[1][0]"),
        ({"tracker": "deepsort"}, "sources[1].analytics.tracker.kind: Input should be 'bytetrack', 'sort' or 'ocsort'"),
    ],
)
def test_analytics_errors_name_the_key_path_in_the_file(analytics, needle):
    with pytest.raises(ConfigError) as info:
        parse_settings({"sources": ["a", {"url": "b", "analytics": analytics}]}, "c.yaml")
    text = str(info.value).replace("Value error, ", "")
    assert text.startswith("c.yaml: ") and needle.replace("Value error, ", "") in text and "\n" not in text, text


def test_yaml_alias_bomb_and_huge_file_are_refused_quickly(tmp_path):
    """Nested aliases (a billion laughs) and a file of megabytes: one short line, no expansion, no minutes."""
    bomb = tmp_path / "bomb.yaml"
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    bomb.write_text("\n".join(lines) + "\nsources: [{url: a.mp4, analytics: {events: {kinds: *a8}}}]\n")
    with pytest.raises(ConfigError) as info:
        load_settings(bomb)
    assert "aliases" in str(info.value) and len(str(info.value)) < 300, info.value
    big = tmp_path / "big.yaml"
    big.write_text("sources:\n" + "  - a.mp4\n" * 200_000)
    with pytest.raises(ConfigError, match="too big for a config file"):
        load_settings(big)


def test_config_schema_describes_the_tree():
    schema = config_schema()
    source = schema["$defs"]["SourceSpec"]["properties"]
    assert {"url", "analytics", "classes", "record"} <= set(source)
    zone = schema["$defs"]["ZoneSpec"]["properties"]
    assert "points" in zone and "class_ids" not in zone


def test_env_expansion():
    assert expand_env("rtsp://u:${PW}@h/x", env={"PW": "s3"}) == "rtsp://u:s3@h/x"
    with pytest.raises(ConfigError, match=r"sources\[0\].url: environment variable PW is not set"):
        expand_env("rtsp://u:${PW}@h/x", "sources[0].url", env={})


def test_headless_plans_apply_per_source_settings(tmp_path, detect_ir):
    """Per-source thresholds, classes by name and rect become each source's plan; rect splits the engines."""
    from yolovino.inference.core.config import InferenceConfig
    from yolovino.inference.model.ir import YoloModel
    from yolovino.inference.service.plan import HeadlessConfig, plan_sources

    s = parse_settings(
        {
            "sources": [
                {"url": "a.mp4", "name": "a", "conf": 0.6, "classes": ["person", "car"]},
                {"url": "b.mp4", "rect": False},
            ]
        }
    )
    cfg = HeadlessConfig(
        sources=list(s.sources),
        model=detect_ir,
        inference=InferenceConfig(conf=0.3),
        save=str(tmp_path / "out.mp4"),
        names_of=lambda p: YoloModel.load(p).names,
    )
    a, b = plan_sources(cfg)
    assert a.config.conf == 0.6 and a.config.classes == (0, 2) and a.save == str(tmp_path / "out-a.mp4")
    assert b.config.conf == 0.3 and b.config.rect is False and b.save == str(tmp_path / "out-b.mp4.mp4")
    assert a.lane_key != b.lane_key  # another letterbox: another compiled graph, another engine
    cfg.sources = [s.sources[0].model_copy(update={"classes": ["unicorn"]})]
    with pytest.raises(ConfigError, match=r"sources\[0\]\.classes\[0\]: unknown class 'unicorn'"):
        plan_sources(cfg)


def test_cli_bad_yaml_is_one_line_exit_2(tmp_path, detect_ir):
    cfg = tmp_path / "cams.yaml"
    cfg.write_text("sources:\n  - url: a.mp4\n    thresh: 0.3\n")
    proc = subprocess.run(
        [sys.executable, "app.py", "--headless", "--model", str(detect_ir), "--config", str(cfg)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert "sources[0].thresh: unknown key" in last, last
