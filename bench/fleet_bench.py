"""Fleet: what running on Ray costs against the plain headless app, and batch throughput on local clusters.

    .venv/bin/python -m bench.fleet_bench [--model models/yolov8n/int8] [--cameras 6] [--seconds 20]
                                          [--warmup 8] [--repeats 2] [--files 6] [--file-seconds 10]

1. Overhead, live: the same RTSP cameras (tests/rtsp_server.py on 127.0.0.1 looping the sample clip at its
   own 10 fps, one session per camera, keep-latest, JSON lines per camera) run by `app.py --headless
   --config` (as is, and with OMP_NUM_THREADS=1, which Ray sets for its workers) and by `yolovino-fleet
   live` on a one-node local Ray cluster, in turn, `--repeats` times.
   Enough cameras that the box cannot keep up, so the figure is the frames/s actually processed: results
   with a timestamp inside the measuring window (after the warm-up), all cameras together. Target: the
   fleet keeps >= 0.95 of the headless throughput (ratio of the medians).
2. Batch: `--files` copies of a `--file-seconds` cut of the clip through `yolovino-fleet batch` on a
   one-node cluster (2 CPUs: two files at a time) and on a two-node cluster (1 CPU each: also two at a
   time), aggregate frames/s from the batch's own report; the plain headless app with the same files as
   its sources (one process, one engine) as the reference. On one 2-core box the two-node figure measures
   Ray's per-node overhead, not scaling: both nodes share the same two cores.
Clusters: tests/ray_cluster.py (separate `ray start` processes on 127.0.0.1, torn down by PID).
Prints a table, writes bench/results/fleet.json with the CPU model and ISA.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.benchlib import (
    REPO,
    RtspServer,
    default_clip,
    default_model,
    machine_info,
    machine_line,
    video_only,
    write_json,
)
from tests.ray_cluster import LocalCluster


def _lines(path: Path) -> list[dict]:
    out = []
    if path.exists():
        for text in path.read_text().splitlines():
            try:
                out.append(json.loads(text))
            except ValueError:
                pass
    return out


def _cameras_yaml(path: Path, url: str, n: int, out: Path) -> list[Path]:
    rows = ["sources:"]
    files = []
    for i in range(n):
        files.append(out / f"cam{i}.jsonl")
        rows += [f"  - url: {url}", f"    name: cam{i}", f"    jsonl: {files[-1]}"]
    path.write_text("\n".join(rows) + "\n")
    return files


def live_fps(
    cmd: list[str], files: list[Path], warmup: float, seconds: float, log: Path, env: dict | None = None
) -> dict:
    """Start the command, wait until every camera has results, then count results in the window."""
    for f in files:
        f.unlink(missing_ok=True)
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    try:
        deadline = time.monotonic() + 180
        while not all(_lines(f) for f in files):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"fleet_bench: {cmd[1:4]} gave no results; see {log}")
            time.sleep(0.5)
        start = time.time() + warmup
        time.sleep(warmup + seconds)
        end = start + seconds
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()
    counts = [sum(1 for r in _lines(f) if start <= r["timestamp"] < end) for f in files]
    return {"fps": sum(counts) / seconds, "per_camera": [c / seconds for c in counts]}


def batch_fps(cluster: LocalCluster, model: Path, inputs: Path, out: Path) -> dict:
    report = out.parent / f"{out.name}.json"
    cmd = [sys.executable, "-m", "yolovino.fleet", "batch", "--address", cluster.address, "--out", str(out)]
    cmd += ["--model", str(model), "--no-progress", "--summary", str(report), str(inputs)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"fleet_bench: batch failed: {done.stderr[-2000:]}")
    data = json.loads(report.read_text())
    nodes = {json.loads(s.read_text())["node"] for s in out.glob("*.summary.json")}
    return {"fps": data["fps"], "frames": data["frames"], "seconds": data["seconds"], "nodes_used": len(nodes)}


def headless_files_fps(model: Path, files: list[Path], work: Path) -> dict:
    cfg = work / "files.yaml"
    cfg.write_text("sources:\n" + "".join(f"  - url: {f}\n    name: {f.stem}\n" for f in files))
    cmd = [sys.executable, "app.py", "--headless", "--config", str(cfg), "--model", str(model), "--no-annotate"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=1800)
    m = re.search(r"done: (\d+) frames in ([\d.]+) s \(([\d.]+) fps\)", done.stderr + done.stdout)
    if done.returncode != 0 or m is None:
        raise SystemExit(f"fleet_bench: headless run failed: {done.stderr[-2000:]}")
    return {"fps": float(m.group(3)), "frames": int(m.group(1)), "seconds": float(m.group(2))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path)
    ap.add_argument("--clip", default="one-by-one-person-detection.mp4")
    ap.add_argument("--cameras", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--warmup", type=float, default=8.0)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--files", type=int, default=6)
    ap.add_argument("--file-seconds", type=float, default=10.0)
    ap.add_argument("--skip-live", action="store_true")
    ap.add_argument("--skip-batch", action="store_true")
    args = ap.parse_args()
    model = (args.model or default_model(script="fleet_bench")).resolve()
    info = machine_info()
    work = Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    os.environ.setdefault("YOLO_APP_CACHE", str(work / "cache"))  # the app's and the nodes' compiled models
    clip = video_only(default_clip(args.clip), work)
    results: dict = {"model": str(model), "clip": args.clip, "machine": info}

    if not args.skip_live:
        out = work / "live"
        out.mkdir()
        # Ray starts its workers with OMP_NUM_THREADS=1: the headless app is also measured that way
        runs: dict[str, list[dict]] = {"headless": [], "headless_omp1": [], "fleet_1node": []}
        with RtspServer(clip) as server, LocalCluster({"head": {}}, cpus=2) as one:
            files = _cameras_yaml(work / "cams.yaml", server.url("x"), args.cameras, out)
            base = ["--config", str(work / "cams.yaml"), "--model", str(model)]
            for r in range(args.repeats):
                print(f"[live {r + 1}/{args.repeats}] headless, then fleet on 1 node", file=sys.stderr, flush=True)
                cmd = [sys.executable, "app.py", "--headless", *base]
                runs["headless"].append(live_fps(cmd, files, args.warmup, args.seconds, work / "headless.log"))
                omp1 = {"OMP_NUM_THREADS": "1"}
                runs["headless_omp1"].append(live_fps(cmd, files, args.warmup, args.seconds, work / "h1.log", omp1))
                cmd = [sys.executable, "-m", "yolovino.fleet", "live", "--address", one.address, *base]
                runs["fleet_1node"].append(live_fps(cmd, files, args.warmup, args.seconds, work / "fleet.log"))
        med = {k: statistics.median(r["fps"] for r in v) for k, v in runs.items()}
        results["live"] = {
            "cameras": args.cameras,
            "demand_fps": args.cameras * 10,
            "runs": runs,
            "median_fps": med,
            "ratio": med["fleet_1node"] / max(med["headless"], 1e-9),
            "ratio_same_env": med["fleet_1node"] / max(med["headless_omp1"], 1e-9),
            "target": 0.95,
        }

    if not args.skip_batch:
        cut = work / "cut.mp4"
        subprocess.run(
            [
                "ffmpeg",
                "-v",
                "error",
                "-y",
                "-i",
                str(clip),
                "-t",
                str(args.file_seconds),
                "-c",
                "copy",
                "-an",
                str(cut),
            ],
            check=True,
            timeout=120,
        )
        inputs = work / "inputs"
        inputs.mkdir()
        files = []
        for i in range(args.files):
            files.append(inputs / f"clip{i:02d}.mp4")
            files[-1].write_bytes(cut.read_bytes())
        print("[batch] headless reference, 1-node cluster, 2-node cluster", file=sys.stderr, flush=True)
        batch = {"headless_one_process": headless_files_fps(model, files, work)}
        with LocalCluster({"head": {}}, cpus=2) as one:
            batch["fleet_1node_2cpu"] = batch_fps(one, model, inputs, work / "out1")
        with LocalCluster({"head": {}, "w": {}}, cpus=1) as two:
            batch["fleet_2node_1cpu_each"] = batch_fps(two, model, inputs, work / "out2")
        results["batch"] = {"files": args.files, "file_seconds": args.file_seconds, "runs": batch}

    print()
    if "live" in results:
        lv = results["live"]
        print(
            f"live: {lv['cameras']} RTSP cameras at 10 fps ({lv['demand_fps']} fps asked), {args.seconds:.0f} s window"
        )
        print(f"{'mode':<28}{'frames/s (median)':>20}{'runs':>24}")
        for k, v in lv["runs"].items():
            shown = ", ".join(f"{r['fps']:.1f}" for r in v)
            print(f"{k:<28}{lv['median_fps'][k]:>20.1f}{shown:>24}")
        verdict = "meets" if lv["ratio"] >= lv["target"] else "BELOW"
        print(f"fleet / headless = {lv['ratio']:.3f} ({verdict} the >= {lv['target']} target)")
        print(f"fleet / headless with OMP_NUM_THREADS=1 (as Ray runs its workers) = {lv['ratio_same_env']:.3f}\n")
    if "batch" in results:
        b = results["batch"]
        print(f"batch: {b['files']} copies of a {b['file_seconds']:.0f} s cut of the clip")
        print(f"{'mode':<28}{'frames/s':>10}{'frames':>8}{'seconds':>9}{'nodes used':>12}")
        for k, v in b["runs"].items():
            print(f"{k:<28}{v['fps']:>10.1f}{v['frames']:>8}{v['seconds']:>9.1f}{v.get('nodes_used', 1):>12}")
        print("(one 2-core box: the 2-node figure is Ray's overhead with two nodes on the same cores, not scaling)")
    print(machine_line(info))
    path = write_json(REPO / "bench" / "results" / "fleet.json", results)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
