"""Issue-16 target: what the built-in RTSP server costs per served stream, with 1 and 4 clients.

    .venv/bin/python -m bench.serve_bench [--clip videos/one-by-one-person-detection.mp4] [--seconds 20]

One stream of the clip's frames is pushed into inference/outputs/rtsp_server.py at the clip's own frame rate (as the
pipeline would, annotated or not: the server's work is the same), in this process. For 0, 1 and 4 clients
(ffmpeg reading over RTSP/TCP into the null muxer, each a separate process whose CPU is not counted), this
process's CPU time is read from /proc over a window of --seconds: that is the server's cost (x264 encode
once per stream, RTP payloading, one send per client) plus the feeder's. Reported as % of one core and of
the machine, the ratio 4 clients / 1 client, and the frame rate each client received.
Prints one table and writes bench/results/serve.json. Only ratios within one run mean anything.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench.benchlib import REPO, default_clip, free_port, machine_info, machine_line, write_json
from yolovino.inference.outputs.rtsp_server import RtspServer
from yolovino.inference.sources import open_source, output_fps


def cpu_seconds() -> float:
    fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Feeder:
    """Pushes the clip's frames (looped) into a served stream at `fps`."""

    def __init__(self, stream, frames, fps: float):
        self.stream, self.frames, self.fps = stream, frames, fps
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        period, i, next_at = 1.0 / self.fps, 0, time.monotonic()
        while not self.stop.is_set():
            self.stream.write_image(self.frames[i % len(self.frames)])
            i += 1
            next_at += period
            self.stop.wait(max(0.0, next_at - time.monotonic()))


def client(url: str) -> subprocess.Popen:
    return subprocess.Popen(
        ["ffmpeg", "-v", "error", "-nostdin", "-rtsp_transport", "tcp", "-i", url, "-f", "null", "-"]
        + ["-progress", "pipe:1", "-nostats"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def frames_of(proc: subprocess.Popen) -> int:
    """Stop a client and return the last frame count its -progress output reported."""
    proc.terminate()
    out, _ = proc.communicate(timeout=20)
    counts = [int(line.split("=")[1]) for line in out.splitlines() if line.startswith("frame=")]
    return counts[-1] if counts else 0


def measure(server: RtspServer, stream, n_clients: int, seconds: float) -> dict:
    procs = [client(stream.url) for _ in range(n_clients)]
    deadline = time.monotonic() + 60
    while n_clients and (server.clients() < n_clients or stream.frames_pushed < 10) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2.0)  # past the clients' probing
    pushed0, c0, t0 = stream.frames_pushed, cpu_seconds(), time.monotonic()
    time.sleep(seconds)
    cpu, wall = cpu_seconds() - c0, time.monotonic() - t0
    pushed = stream.frames_pushed - pushed0
    received = [frames_of(p) for p in procs]
    return {
        "clients": n_clients,
        "cpu_s": round(cpu, 3),
        "wall_s": round(wall, 2),
        "cpu_pct_core": round(100 * cpu / wall, 2),
        "cpu_pct_machine": round(100 * cpu / wall / (os.cpu_count() or 1), 2),  # of every core together
        "fps_encoded": round(pushed / wall, 2),
        "frames_received": received,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clip", type=Path, default=default_clip())
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--clients", default="0,1,4")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "serve.json")
    a = p.parse_args()
    info = machine_info()  # before GStreamer starts in this process (see model.devices.available_devices)
    src = open_source(str(a.clip), live=False)
    fps = output_fps(src)
    frames = [f.image for _, f in zip(range(int(fps * 10)), src)]
    src.close()
    server = RtspServer("127.0.0.1", free_port())
    stream = server.stream("bench", fps)
    feeder = Feeder(stream, frames, fps)
    rows = []
    try:
        for n in [int(x) for x in a.clients.split(",")]:
            rows.append(measure(server, stream, n, a.seconds))
            print(f"  {n} client(s): {rows[-1]['cpu_pct_core']:.2f} % of a core", flush=True)
    finally:
        feeder.stop.set()
        feeder.thread.join()
        server.close()
    base = next((r for r in rows if r["clients"] == 0), None)
    one = next((r for r in rows if r["clients"] == 1), None)
    h, w = frames[0].shape[:2]
    print(f"\nbuilt-in RTSP server, one stream of {a.clip.name} ({w}x{h}, {fps:g} fps), {a.seconds:g} s per row")
    print(machine_line(info))
    print(
        "| clients | CPU % of one core | % of the machine | added over 0 clients (core %) | vs 1 client "
        "| fps encoded | frames received per client |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        added = r["cpu_pct_core"] - base["cpu_pct_core"] if base else float("nan")
        ratio = r["cpu_pct_core"] / one["cpu_pct_core"] if one and one["cpu_pct_core"] else float("nan")
        r["added_pct_core"], r["vs_one_client"] = round(added, 2), round(ratio, 2)
        print(
            f"| {r['clients']} | {r['cpu_pct_core']:.2f} | {r['cpu_pct_machine']:.2f} | {added:.2f} | {ratio:.2f} "
            f"| {r['fps_encoded']:.1f} | {r['frames_received']} |"
        )
    write_json(a.out, {"clip": str(a.clip), "fps": fps, "seconds": a.seconds, **info, "rows": rows})
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
