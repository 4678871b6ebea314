"""The fleet (fleet/) on a real Ray cluster on this machine: a head and two workers, each its own
`ray start` process (tests/ray_cluster.py), cameras from the local GStreamer RTSP server.

- live: 4 cameras spread over the nodes by their capacities (2 each); one worker node killed (SIGKILL
  of all its processes): its cameras run again on the other nodes within 10 s, the others never stop;
  the node comes back and is listed alive again; `fleet status` shows node, state, FPS, restarts;
- batch: copies of the sample clips processed as Ray tasks, each file exactly once, detections identical
  to the single-box headless run on the same file; a worker killed mid-batch (no retries): the rerun
  skips the finished files and completes the rest.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import psutil
import pytest
from fixtures_models import transcode
from ray_cluster import LocalCluster
from rtsp_control import RtspServer
from waiting import wait_until

from yolovino.fleet.cluster import place

REPO = Path(__file__).resolve().parents[1]
NODES = {
    "head": {"fleet_cameras": 2, "node_head": 1},
    "a": {"fleet_cameras": 2, "node_a": 1},
    "b": {"fleet_cameras": 2, "node_b": 1},
}


def fleet(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "yolovino.fleet", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


def lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    out = []
    for text in path.read_text().splitlines():
        try:
            out.append(json.loads(text))
        except ValueError:  # the line being written
            pass
    return out


def count_frames(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


@pytest.fixture(scope="module")
def cluster():
    """Head + 2 workers, 1 CPU and 80 MB of object store each; torn down by PID even when a test fails."""
    c = LocalCluster(NODES)
    try:
        c.start()
        print("node start times (s):", {n: round(m.started_in or 0, 1) for n, m in c.members.items()})
        yield c
    finally:
        c.stop()


# --- placement and imports (no cluster) ---------------------------------------------------------------


def test_place_spreads_by_share_of_capacity():
    placed, left = place([f"c{i}" for i in range(7)], {}, {"n1": 4, "n2": 2, "n3": 2})
    per = {n: sum(1 for v in placed.values() if v == n) for n in ("n1", "n2", "n3")}
    assert per == {"n1": 3, "n2": 2, "n3": 2} and left == []
    # a node already loaded takes new cameras last; nothing goes beyond capacity
    placed, left = place(["x", "y", "z"], {"n1": 2, "n2": 0}, {"n1": 2, "n2": 2})
    assert placed == {"x": "n2", "y": "n2"} and left == ["z"]


def test_single_box_app_imports_no_ray(detect_ir, tmp_path):
    argv = ["--headless", "--source", str(tmp_path / "x.mp4"), "--model", str(detect_ir)]
    code = (
        "import sys\nfrom yolovino import app\n"
        f"cfg = app.build_config({argv!r})\n"
        "import yolovino.inference.service.runner, yolovino.inference.service.supervisor, yolovino.inference.pipeline\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'ray' or m.startswith('yolovino.fleet')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr[-2000:]


@pytest.mark.parametrize(
    "args, says",
    [
        (["live", "--config", "{tmp}/missing.yaml"], "config file not found"),
        (["live", "--config", "{tmp}/serve.yaml"], "not in fleet mode: the built-in RTSP server"),
        (["batch", "--out", "{tmp}/out", "{tmp}/nothing-here"], "no such file or folder"),
        (["batch", "--out", "{tmp}/out", "--retries", "-1", "{tmp}"], "--retries must be >= 0"),
        (["live"], "no cluster address"),
    ],
)
def test_bad_input_one_line_exit_2(args, says, detect_ir, tmp_path):
    (tmp_path / "serve.yaml").write_text("serve: {port: 8554}\nsources: [{url: cam.mp4, name: door}]\n")
    (tmp_path / "cams.yaml").write_text("sources: [{url: cam.mp4, name: door}]\n")
    argv = [a.format(tmp=tmp_path) for a in args]
    if argv == ["live"]:
        argv += ["--config", str(tmp_path / "cams.yaml")]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    run = subprocess.run(
        [sys.executable, "-m", "yolovino.fleet", *argv, "--model", str(detect_ir)],
        cwd=REPO, capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert run.returncode == 2 and says in run.stderr, run.stderr[-2000:]
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr


# --- live ----------------------------------------------------------------------------------------------


@pytest.fixture
def camera(person_clip, tmp_path, rtsp_server):
    """The RTSP server looping a 384x216 copy of the clip (4 cameras on 3 nodes on 2 shared cores)."""
    clip = tmp_path / "small.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(person_clip), "-vf", "scale=384:216", "-c:v", "libx264"]
        + ["-preset", "ultrafast", "-bf", "0", "-g", "10", "-an", str(clip)],
        check=True,
        timeout=60,
    )
    rtsp_server.stop()  # the fixture checked the packages; serve the small clip instead
    server = RtspServer(clip).start()
    yield server
    server.stop()


def _restarted_at(rows: list[dict], after: float) -> float | None:
    """Wall time of the first frame of a new source (frame index back to a lower one) after `after`."""
    for prev, row in zip(rows, rows[1:]):
        if row["frame_index"] < prev["frame_index"] and row["timestamp"] > after:
            return row["timestamp"]
    return None


@pytest.mark.rtsp
def test_live_spread_failover_and_status(cluster, camera, detect_ir, tmp_path):
    cams = [f"cam{i}" for i in range(4)]
    cfg = tmp_path / "cams.yaml"
    text = ["sources:"]
    for cam in cams:
        text += [f"  - url: {camera.url('x')}", f"    name: {cam}", f"    jsonl: {tmp_path / cam}.jsonl"]
    cfg.write_text("\n".join(text) + "\n")
    log = tmp_path / "live.log"
    cmd = [sys.executable, "-m", "yolovino.fleet", "live", "--address", cluster.address, "--config", str(cfg)]
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd + ["--model", str(detect_ir)], cwd=REPO, stdout=fh, stderr=subprocess.STDOUT)
    try:
        flowing = wait_until(lambda: all(len(lines(tmp_path / f"{c}.jsonl")) >= 10 for c in cams), 120, 0.25)
        assert flowing, log.read_text()[-4000:]
        status = json.loads(fleet("status", "--address", cluster.address, "--json").stdout)
        where = {c["camera"]: c["node"] for c in status["cameras"]}
        per_node = {n: sorted(c for c, w in where.items() if w == n) for n in NODES}
        assert all(0 < len(v) <= 2 for v in per_node.values()), per_node  # spread, within capacity
        victim = next(n for n in ("a", "b") if per_node[n])
        moved, others = per_node[victim], [c for c in cams if c not in per_node[victim]]

        t0 = time.time()
        killed = cluster.kill_node(victim)
        resumed = wait_until(lambda: all(_restarted_at(lines(tmp_path / f"{c}.jsonl"), t0) for c in moved), 30, 0.1)
        assert resumed, log.read_text()[-4000:]
        times = {c: round(_restarted_at(lines(tmp_path / f"{c}.jsonl"), t0) - t0, 2) for c in moved}
        # the other cameras: frames kept flowing from the same source (no restart, no long gap)
        until = t0 + max(times.values()) + 3
        wait_until(lambda: all(lines(tmp_path / f"{c}.jsonl")[-1]["timestamp"] > until for c in others), 30, 0.2)
        gaps = {}
        for c in others:
            rows = [r for r in lines(tmp_path / f"{c}.jsonl") if t0 - 2 <= r["timestamp"] <= until]
            assert rows and _restarted_at(rows, t0 - 2) is None, f"{c} restarted"
            stamps = [t0 - 2] + [r["timestamp"] for r in rows] + [until]
            gaps[c] = round(max(b - a for a, b in zip(stamps, stamps[1:])), 2)
        after = json.loads(fleet("status", "--address", cluster.address, "--json").stdout)
        table = fleet("status", "--address", cluster.address).stdout

        cluster.start_node(victim)  # the node comes back: listed alive, ready for new placements
        back = wait_until(
            lambda: any(
                n["node"] == victim and n["alive"]
                for n in json.loads(fleet("status", "--address", cluster.address, "--json").stdout)["nodes"]
            ),
            60,
            1.0,
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=90)
    print(f"killed node {victim} ({killed} processes); its cameras {moved} frames again after (s): {times}")
    print(f"largest gap between frames of the other cameras {others} around the failover (s): {gaps}")
    print(table)
    assert all(t < 10 for t in times.values()), times
    assert all(g < 3.0 for g in gaps.values()), gaps
    rows = {c["camera"]: c for c in after["cameras"]}
    for c in moved:
        assert rows[c]["node"] not in (victim, None) and rows[c]["restarts"] == 1, rows[c]
    for c in others:
        assert rows[c]["node"] == where[c] and rows[c]["restarts"] == 0, rows[c]
    assert all(rows[c]["state"] == "running" and rows[c]["fps"] > 0 for c in cams), rows
    dead = [n for n in after["nodes"] if n["node"] == victim]
    assert dead and not any(n["alive"] for n in dead), after["nodes"]
    assert back, "the restarted node is not listed alive"
    assert proc.returncode == 0, log.read_text()[-3000:]


# --- batch ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_clips(tmp_path_factory, person_clip, require_asset):
    """Short cuts of the two sample mp4 clips (6 s of people, 4 s of cars)."""
    d = tmp_path_factory.mktemp("samples")
    x264 = ("-c:v", "libx264", "-preset", "ultrafast", "-an")
    cars = transcode(require_asset("videos/car-detection.mp4"), d / "cars.mp4", "-ss", "2", "-t", "4", *x264)
    return [person_clip, cars]


def _copies(clips: list[Path], n: int, folder: Path) -> list[Path]:
    folder.mkdir(parents=True)
    out = []
    for i in range(n):
        src = clips[i % len(clips)]
        out.append(folder / f"{src.stem}-{i:02d}{src.suffix}")
        shutil.copyfile(src, out[-1])
    return out


def _detections(path: Path) -> list[tuple[int, list]]:
    return [(r["frame_index"], r["detections"]) for r in lines(path)]


def test_batch_every_file_once_same_as_headless(cluster, detect_ir, sample_clips, tmp_path):
    files = _copies(sample_clips, 6, tmp_path / "in")
    out = tmp_path / "out"
    run = fleet(
        "batch", "--address", cluster.address, "--out", str(out), "--model", str(detect_ir), "--no-progress",
        "--summary", str(tmp_path / "batch.json"), str(tmp_path / "in"), timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    print(run.stdout.strip())
    report = json.loads((tmp_path / "batch.json").read_text())
    assert report["processed"] == 6 and report["skipped"] == 0 and not report["failed"], report
    summaries = sorted(out.glob("*.summary.json"))
    assert [s.name.removesuffix(".summary.json") for s in summaries] == sorted(f.stem for f in files)
    nodes = set()
    for f in files:
        summary = json.loads((out / f"{f.stem}.summary.json").read_text())
        idx = [r["frame_index"] for r in lines(out / f"{f.stem}.jsonl")]
        assert idx == list(range(count_frames(f))) == list(range(summary["frames"])), f
        nodes.add(summary["node"])
    assert len(nodes) >= 2, "the files ran on one node only"
    assert not any(out.glob(".staging/*")), "partial outputs left behind"
    for clip in sample_clips:  # the single-box headless run on the same file gives the same detections
        ref = tmp_path / f"{clip.stem}-headless.jsonl"
        cmd = [sys.executable, "app.py", "--headless", "--source", str(clip), "--model", str(detect_ir)]
        done = subprocess.run(cmd + ["--jsonl", str(ref)], cwd=REPO, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        copy = next(f for f in files if f.stem.startswith(clip.stem))
        assert _detections(out / f"{copy.stem}.jsonl") == _detections(ref), clip


def _running_file_task(cluster: LocalCluster, node: str) -> bool:
    for pid in cluster.pids(node):
        try:
            if "run_file" in " ".join(psutil.Process(pid).cmdline()):
                return True
        except psutil.NoSuchProcess:
            continue
    return False


def test_batch_worker_killed_then_rerun_resumes(cluster, detect_ir, sample_clips, tmp_path):
    files = _copies(sample_clips, 8, tmp_path / "in")
    out = tmp_path / "out"
    args = ["--address", cluster.address, "--out", str(out), "--model", str(detect_ir), "--no-progress"]
    cmd = [sys.executable, "-m", "yolovino.fleet", "batch", *args, "--retries", "0", str(tmp_path / "in")]
    first = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        busy = wait_until(lambda: any(out.glob("*.summary.json")) and _running_file_task(cluster, "b"), 180, 0.05)
        assert busy, "no file finished while node b was processing another"
        cluster.kill_node("b")
        stdout, stderr = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    done_before = {s: s.stat().st_mtime_ns for s in out.glob("*.summary.json")}
    print(f"first run (node b killed mid-batch, --retries 0): exit {first.returncode}; {stdout.strip()}")
    failed = [ln for ln in stderr.splitlines() if ln.startswith("fleet: failed:")]
    assert first.returncode == 1 and failed, stdout + stderr[-3000:]
    for line in failed:  # a file lost with its node leaves nothing that looks done
        stem = Path(line.split(": ")[2]).stem
        assert not (out / f"{stem}.summary.json").exists(), line
    assert 0 < len(done_before) < len(files)

    cluster.start_node("b")
    again = fleet("batch", *args, "--summary", str(tmp_path / "rerun.json"), str(tmp_path / "in"), timeout=300)
    print(f"rerun: exit {again.returncode}; {again.stdout.strip()}")
    assert again.returncode == 0, again.stdout + again.stderr[-3000:]
    report = json.loads((tmp_path / "rerun.json").read_text())
    assert report["skipped"] == len(done_before) and report["processed"] == len(files) - len(done_before), report
    assert all(s.stat().st_mtime_ns == t for s, t in done_before.items()), "a finished file was redone"
    for f in files:
        assert [r["frame_index"] for r in lines(out / f"{f.stem}.jsonl")] == list(range(count_frames(f))), f
    assert not any(out.glob(".staging/*"))
