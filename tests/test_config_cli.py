"""`yolovino config check FILE` and `yolovino config schema`: a camera file checked before deployment (one line
naming every bad key, exit 2; else the effective configuration with its defaults, exit 0), and a JSON Schema
that a real validator (jsonschema, what the YAML language server uses) applies to the README's example."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import jsonschema
import pytest
import yaml
from waiting import wait_until

REPO = Path(__file__).resolve().parents[1]


def run_app(*args, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "app.py", *map(str, args)], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


def readme_example(clip: Path) -> dict:
    """The analytics YAML of the README, with its camera replaced by a local clip."""
    text = (REPO / "README.md").read_text()
    block = re.search(r"```yaml\n(sources:.*?)```", text, re.S)
    assert block, "README has no sources: YAML example"
    doc = yaml.safe_load(block.group(1))
    doc["sources"][0]["url"] = str(clip)
    return doc


def test_check_prints_the_effective_config_with_defaults(tmp_path, detect_ir, video_clip):
    doc = readme_example(video_clip)
    for key, name in (("jsonl", "e.jsonl"), ("snapshots", "snaps")):
        events = doc["sources"][0]["analytics"]["events"]
        events[key] = str(tmp_path / name) if key == "jsonl" else {**events[key], "dir": str(tmp_path / name)}
    cfg = tmp_path / "cams.yaml"
    cfg.write_text(yaml.safe_dump(doc))
    proc = run_app("config", "check", cfg, "--model", detect_ir)
    assert proc.returncode == 0, proc.stderr
    assert "valid, 1 source(s) planned" in proc.stderr
    effective = yaml.safe_load(proc.stdout)
    analytics = effective["sources"][0]["analytics"]
    assert analytics["tracker"]["kind"] == "bytetrack" and analytics["tracker"]["lost_track_s"] == 1.0
    assert analytics["lines"][0]["anchor"] == "center" and analytics["zones"][0]["anchor"] == "bottom_center"
    assert analytics["events"]["queue_size"] == 1000 and analytics["events"]["webhook"]["retries"] == 3
    assert effective["stall_timeout"] == 10.0


def test_check_refuses_a_broken_file_in_one_line(tmp_path, detect_ir):
    cfg = tmp_path / "broken.yaml"
    cfg.write_text(
        "sources:\n  - url: a.mp4\n    fps: 3\n    analytics:\n"
        "      zones: [{name: z, points: [[0, 0.5], [.inf, 0.5], [0.2, 0.9]]}]\n"
        "      lines: [{points: [[0.1, 0.5]]}]\n"
    )
    proc = run_app("config", "check", cfg, "--model", detect_ir)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    for needle in (
        "sources[0].analytics.zones[0].points[1][0]: Input should be a finite number",
        "sources[0].analytics.lines[0].points: a line needs at least 2 points, got 1",
        "sources[0].fps: unknown key",
    ):
        assert needle in line, line


def test_check_refuses_an_unknown_class_against_the_model(tmp_path, detect_ir, video_clip):
    cfg = tmp_path / "cams.yaml"
    cfg.write_text(yaml.safe_dump({"sources": [{"url": str(video_clip), "classes": ["person", "unicorn"]}]}))
    proc = run_app("config", "check", cfg, "--model", detect_ir)
    assert proc.returncode == 2 and "sources[0].classes[1]: unknown class 'unicorn'" in proc.stderr, proc.stderr


def test_schema_validates_the_readme_example_and_catches_typos(tmp_path, video_clip):
    out = tmp_path / "cams.schema.json"
    proc = run_app("config", "schema", "-o", out)
    assert proc.returncode == 0, proc.stderr
    schema = json.loads(out.read_text())
    doc = readme_example(video_clip)
    jsonschema.validate(doc, schema)  # the documented example is valid for an editor
    doc["sources"][0]["analytics"]["zones"][0]["colour"] = "red"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, schema)
    doc["sources"][0]["analytics"]["zones"][0].pop("colour")
    doc["sources"][0]["analytics"]["lines"][0]["anchor"] = "feet"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, schema)
    doc["sources"][0]["analytics"]["lines"][0]["anchor"] = "center"
    assert len(doc["sources"][0]["analytics"]["lines"][1]["points"]) == 3  # the example's polyline is valid
    doc["sources"][0]["analytics"]["lines"][1]["points"] = [[0.1, 0.5]]  # a line needs 2 points or more
    with pytest.raises(jsonschema.ValidationError, match="too short"):
        jsonschema.validate(doc, schema)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--output-fps", "0"], "--output-fps must be > 0"),
        (["--output-fps", "nan"], "--output-fps must be > 0"),
        (["--output-fps", "-5"], "--output-fps must be > 0"),
        (["--output-fps", "1e9"], "--output-fps must be > 0 and <= 240"),
        (["--record", "REC", "--segment-seconds", "0"], "--segment-seconds must be > 0"),
        (["--record", "REC", "--keep-hours", "inf"], "--keep-hours must be > 0"),
        (["--conf", "nan"], "--conf must be >= 0 and <= 1"),
        (["--max-frames", "0"], "--max-frames must be >= 1"),
        (["--metrics-port", "70000"], "--metrics-port must be >= 0 and <= 65535"),
        (["--classes", "99999"], "--classes: unknown class '99999' for this model"),
        (["--classes", "person,unicorn"], "--classes: unknown class 'unicorn' for this model"),
    ],
)
def test_bad_flag_values_name_the_flag(tmp_path, detect_ir, video_clip, args, needle):
    """Issue 28 item 11: every out-of-range flag is one line naming it (exit 2), nothing runs."""
    args = [str(tmp_path / a) if a == "REC" else a for a in args]
    proc = run_app("--headless", "--source", video_clip, "--model", detect_ir, "--max-frames", "1", *args)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert needle in line, line


def test_old_metrics_port_key_still_works_with_one_warning(tmp_path, detect_ir, video_clip):
    cfg = tmp_path / "old.yaml"
    cfg.write_text(yaml.safe_dump({"metrics_port": 0, "sources": [str(video_clip)]}))
    proc = run_app("config", "check", cfg, "--model", detect_ir)
    assert proc.returncode == 0, proc.stderr
    warnings = [ln for ln in proc.stderr.splitlines() if "deprecated" in ln]
    assert warnings == ["yolovino: warning: metrics_port: 0 is deprecated; write metrics: {port: 0}"]


def test_a_bad_reload_is_logged_and_the_running_config_kept(tmp_path, detect_ir, video_clip):
    """Issue 28 item 1: a non-finite coordinate in a live edit (--watch-config) is one log line naming the key;
    the service keeps running the previous config and applies the next valid edit."""
    cfg = tmp_path / "cams.yaml"

    def write(points: str, conf: float) -> None:
        cfg.write_text(
            f"sources:\n  - url: {video_clip}\n    name: cam\n    conf: {conf}\n"
            f"    analytics: {{lines: [{{name: gate, points: {points}}}]}}\n"
        )

    write("[[0.0, 0.5], [1.0, 0.5]]", 0.25)
    proc = subprocess.Popen(
        [sys.executable, "app.py", "--headless", "--config", cfg, "--model", detect_ir, "--watch-config"],
        cwd=REPO,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True)
    reader.start()

    def logged(text: str) -> str | None:
        return next((ln for ln in list(lines) if text in ln), None)

    try:
        assert wait_until(lambda: logged("first result after"), 120), lines
        write("[[0.0, 0.5], [.inf, 0.5]]", 0.25)
        assert wait_until(lambda: logged("reload: config not applied"), 60), lines
        line = logged("reload: config not applied")
        assert "sources[0].analytics.lines[0].points[1][0]" in line and proc.poll() is None, line
        write("[[0.0, 0.6], [1.0, 0.6]]", 0.3)
        assert wait_until(lambda: logged("reload: changed cam"), 60), lines
    finally:
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(60)
        reader.join(10)
    assert rc == 0 and not [ln for ln in lines if "Traceback" in ln], lines


def test_config_errors_never_show_a_password(tmp_path, detect_ir):
    """A bad URL or a missing ${VAR} in a URL is reported with its credentials redacted (issue 28 item 4)."""
    cfg = tmp_path / "cams.yaml"
    cfg.write_text(
        "sources:\n  - url: a.mp4\n    analytics:\n"
        "      events: {webhook: 'ftp://admin:S3cretPW@127.0.0.1/hook?password=S3cretPW'}\n"
    )
    proc = run_app("config", "check", cfg)
    assert proc.returncode == 2 and "S3cretPW" not in proc.stderr and "webhook.url" in proc.stderr, proc.stderr
    proc = run_app(
        "--headless", "--model", detect_ir, "--source", "rtsp://admin:S3cretPW@127.0.0.1/x?pw=${YOLO_TEST_UNSET}"
    )
    assert proc.returncode == 2 and "S3cretPW" not in proc.stderr and "YOLO_TEST_UNSET" in proc.stderr, proc.stderr
