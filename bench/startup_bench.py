"""Start to first result, with a cold and a warm compiled-model cache, per task (issue 15).

    .venv/bin/python -m bench.startup_bench [--tasks detect,segment,pose] [--repeats 3] [--installed]

For each task's INT8 model, `yolovino --headless` is started on one frame of the sample clip, as a user
starts it: "process" is the wall time from spawning the process to its exit after the first result is
written; "first result" is the time inside the process from loading the model to the first result
(imports excluded), as the app logs it. Rows:
  no cache   --no-cache (compile at every start)
  cold       an empty cache folder (compile, then write the cache)
  warm       the same folder again (import the compiled graph)
With --installed, the runtime is first pip-installed into a fresh venv without extras (as on an edge box:
tests/runtime_install.py) and that venv's `yolovino` is started from a folder outside the checkout; the
install's time and size on disk are reported too.
Prints a table with warm/cold ratios from this run and writes bench/results/startup[-installed].json.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.benchlib import REPO, default_clip, ensure_models, machine_info, machine_line, write_json
from tests.runtime_install import clean_env, install_runtime, installed_heavy, site_packages_mb

FIRST = re.compile(r"first result after ([\d.]+) s")


def one_frame_clip(folder: Path) -> Path:
    out = folder / "frame.png"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-ss", "30", "-i", str(default_clip()), "-frames:v", "1", str(out)],
        check=True,
        timeout=60,
    )
    return out


def start_once(
    model: Path, image: Path, cache: list[str], folder: Path, venv: Path | None = None
) -> tuple[float, float]:
    """(process seconds, in-process load-to-first-result seconds) of one headless start; `venv`: the
    installed runtime's `yolovino`, run outside the checkout (else this checkout's app.py)."""
    jsonl = folder / "out.jsonl"
    jsonl.unlink(missing_ok=True)
    cmd = [str(venv / "bin" / "yolovino")] if venv else [sys.executable, "app.py"]
    cmd += ["--headless", "--model", str(model), "--source", str(image)]
    cmd += ["--jsonl", str(jsonl), "--max-frames", "1", "--log-level", "INFO", *cache]
    t0 = time.perf_counter()
    cwd, env = (folder, clean_env()) if venv else (REPO, None)
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - t0
    if proc.returncode != 0 or not jsonl.is_file():
        raise SystemExit(f"startup_bench: app.py failed ({proc.returncode}): {proc.stderr[-500:]}")
    m = FIRST.search(proc.stderr)
    return wall, float(m.group(1)) if m else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", default="detect,segment,pose")
    ap.add_argument("--repeats", type=int, default=3, help="starts per row (median reported)")
    ap.add_argument("--installed", action="store_true", help="start a fresh runtime-only install (no extras)")
    args = ap.parse_args()
    rows = []
    install: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        image = one_frame_clip(folder)
        venv = None
        if args.installed:
            t0 = time.perf_counter()
            venv = install_runtime(folder / "install")
            install = {
                "install_s": round(time.perf_counter() - t0, 1),
                "site_packages_mb": round(site_packages_mb(venv), 1),
                "heavy_modules": installed_heavy(venv),
            }
            print(f"runtime install: {install}", file=sys.stderr, flush=True)
        for task in args.tasks.split(","):
            model = ensure_models(task) / "int8"
            row: dict = {"task": task, "model": str(model.relative_to(REPO))}
            for label in ("no cache", "cold", "warm"):
                runs = []
                for i in range(args.repeats):
                    if label == "no cache":
                        cache = ["--no-cache"]
                    else:  # cold: a new empty folder for every start; warm: one folder filled by a first start
                        d = folder / f"cache-{task}-{label}-{i if label == 'cold' else 0}"
                        if label == "warm" and not d.exists():
                            start_once(model, image, ["--cache-dir", str(d)], folder, venv)
                        cache = ["--cache-dir", str(d)]
                    runs.append(start_once(model, image, cache, folder, venv))
                row[label] = {
                    "process_s": statistics.median(r[0] for r in runs),
                    "first_result_s": statistics.median(r[1] for r in runs),
                    "runs": runs,
                }
                print(f"[{task}] {label}: {row[label]['process_s']:.2f} s", file=sys.stderr, flush=True)
            rows.append(row)
    info = machine_info()
    print(f"\n{machine_line(info)}; median of {args.repeats} starts each")
    if install:
        print(
            f"runtime-only install (pip install ., no extras): {install['site_packages_mb']:.0f} MB on disk, "
            f"installed in {install['install_s']:.0f} s; torch/Ultralytics/NNCF/Gradio/Ray present: "
            f"{install['heavy_modules'] or 'none'}"
        )
    head = f"{'task':<9}{'':<10}{'no cache':>10}{'cold':>8}{'warm':>8}{'cold/warm':>11}"
    print(head)
    for r in rows:
        for key, name in (("process_s", "process"), ("first_result_s", "1st result")):
            nc, cold, warm = (r[k][key] for k in ("no cache", "cold", "warm"))
            print(f"{r['task']:<9}{name:<10}{nc:10.2f}{cold:8.2f}{warm:8.2f}{cold / warm:11.2f}")
    name = "startup-installed.json" if args.installed else "startup.json"
    doc = {"machine": info, "repeats": args.repeats, "install": install, "rows": rows}
    write_json(REPO / "bench" / "results" / name, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
