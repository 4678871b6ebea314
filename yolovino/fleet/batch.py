"""Batch: a list or folder of video files processed as Ray tasks across the cluster, resumable.

Each file is one task (`process_file`) running the headless mode's own pipeline (inference/service/supervisor.py)
on that file, so its JSON lines hold the same detections as `yolovino --headless --source FILE --jsonl`.
Outputs, under --out, at the file's path relative to the inputs' common folder:

    <name>.jsonl          one line per frame (detections), as the headless mode writes
    <name>.events.jsonl   tracking/zone/line events (with --analytics)
    <name>.mp4            annotated video (with --save-video)
    <name>.summary.json   written last: frames, detections per class, time, node; marks the file done

A task writes into out/.staging/<random>/ and moves each output into place when the file is complete;
the summary comes last, atomically (inference/core/fileio.py). A task killed midway (a node lost) leaves
nothing that looks done: a rerun skips exactly the files whose summary matches the input (size, mtime)
and the settings, and whose outputs are all there. Ray retries a failed file up to --retries times (a
lost node or an error); files that still fail are listed and the command exits 1.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from yolovino.fleet.cluster import FleetError
from yolovino.fleet.models import ModelBundle
from yolovino.inference.core.fileio import write_json
from yolovino.inference.core.media import VIDEO_SUFFIXES
from yolovino.inference.service.metrics import Metrics
from yolovino.inference.service.supervisor import Outputs, RunOptions, SourcePlan, Supervisor

STAGING = ".staging"


@dataclass(frozen=True)
class FileJob:
    """One input file and where its outputs go."""

    input: str
    out_dir: str
    rel: str  # output name without suffix, relative to out_dir
    plan: SourcePlan  # the source's plan, resolved by the driver (model path: the driver's)
    save_video: bool
    fingerprint: str

    def target(self, suffix: str) -> Path:
        return Path(self.out_dir) / f"{self.rel}{suffix}"

    @property
    def summary_path(self) -> Path:
        return self.target(".summary.json")


def find_inputs(specs: list[str]) -> list[Path]:
    """Video files named, and those inside named folders (recursively), sorted; FleetError otherwise."""
    files: list[Path] = []
    for spec in specs:
        p = Path(spec).expanduser()
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in VIDEO_SUFFIXES)
        elif p.is_file():
            files.append(p)
        else:
            raise FleetError(f"{spec}: no such file or folder")
    unique = sorted({f.resolve() for f in files})
    if not unique:
        raise FleetError("no video files in " + ", ".join(specs))
    return unique


def output_names(files: list[Path]) -> dict[Path, str]:
    """Each file's output name: its path relative to the files' common folder, without the suffix."""
    root = Path(os.path.commonpath([f.parent for f in files]))
    return {f: str(f.relative_to(root).with_suffix("")) for f in files}


def fingerprint(plan: SourcePlan, model_digest: str, save_video: bool) -> str:
    """What decides the outputs (model content, thresholds and graph, analytics, video or not)."""
    cfg = {k: v for k, v in asdict(plan.config).items() if k != "cache_dir"}
    an = plan.analytics
    if an is not None:
        an = replace(an, events=replace(an.events, jsonl=None))
    text = json.dumps([model_digest, cfg, repr(an), save_video], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def is_done(job: FileJob) -> bool:
    """The file's summary is there, matches the input and the settings, and its outputs are complete."""
    try:
        summary = json.loads(job.summary_path.read_text())
        st = Path(job.input).stat()
    except (OSError, ValueError):
        return False
    if summary.get("fingerprint") != job.fingerprint or summary.get("input_size") != st.st_size:
        return False
    if summary.get("input_mtime_ns") != st.st_mtime_ns:
        return False
    outputs = summary.get("outputs", {})
    return all(
        (Path(job.out_dir) / rel).is_file() and (Path(job.out_dir) / rel).stat().st_size == size
        for rel, size in outputs.items()
    )


class _Count:
    def __init__(self) -> None:
        self.frames = 0
        self.classes: Counter[str] = Counter()
        self.lock = threading.Lock()

    def __call__(self, fr) -> None:
        with self.lock:
            self.frames += 1
            names = fr.results.names
            for c in fr.results.class_ids:
                self.classes[names.get(int(c), str(int(c)))] += 1


def run_file(job: FileJob, bundle: ModelBundle, stall: float = 120.0) -> dict:
    """Process one file on this node (the body of the Ray task); returns its summary."""
    import socket

    out_dir = Path(job.out_dir)
    staging = out_dir / STAGING / f"{uuid.uuid4().hex[:12]}"
    staging.mkdir(parents=True)
    try:
        plan = job.plan
        files = {".jsonl": staging / "results.jsonl"}
        if job.save_video:
            files[".mp4"] = staging / "video.mp4"
        analytics = plan.analytics
        if analytics is not None:
            files[".events.jsonl"] = staging / "events.jsonl"
            analytics = replace(analytics, events=replace(analytics.events, jsonl=str(files[".events.jsonl"])))
        plan = replace(
            plan,
            model=bundle.materialize(),
            jsonl=str(files[".jsonl"]),
            save=str(files[".mp4"]) if job.save_video else None,
            analytics=analytics,
        )
        count = _Count()
        started = time.monotonic()
        sup = Supervisor(Metrics(), Outputs(annotate=job.save_video), count, RunOptions(max_retries=0))
        try:
            sup.apply([plan], strict=True)
            seen, seen_at = 0, time.monotonic()
            while not sup.all_ended():
                time.sleep(0.05)
                if count.frames != seen:
                    seen, seen_at = count.frames, time.monotonic()
                elif time.monotonic() - seen_at > stall:
                    raise RuntimeError(f"{job.input}: no frame for {stall:.0f} s")
        finally:
            sup.close()
        errors = [str(e) for e in sup.lane_errors()] + [str(s.error) for s in sup.sources() if s.error is not None]
        if errors:
            raise RuntimeError(errors[0] if job.input in errors[0] else f"{job.input}: {errors[0]}")
        if count.frames == 0:
            raise RuntimeError(f"{job.input}: no frame could be decoded")
        seconds = time.monotonic() - started
        outputs = {}
        for suffix, tmp in files.items():
            target = job.target(suffix)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, target)
            outputs[str(target.relative_to(out_dir))] = target.stat().st_size
        st = Path(job.input).stat()
        summary = {
            "input": job.input,
            "input_size": st.st_size,
            "input_mtime_ns": st.st_mtime_ns,
            "fingerprint": job.fingerprint,
            "frames": count.frames,
            "detections": dict(sorted(count.classes.items())),
            "seconds": round(seconds, 3),
            "fps": round(count.frames / max(seconds, 1e-6), 2),
            "node": _node_id(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "outputs": outputs,
            "finished": time.time(),
        }
        write_json(job.summary_path, summary)
        return summary
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _node_id() -> str | None:
    try:
        import ray

        return ray.get_runtime_context().get_node_id()
    except Exception:  # noqa: BLE001 - outside Ray (tests, a local run)
        return None


def clear_staging(out_dir: Path) -> int:
    """Partial outputs of tasks that were killed (one batch per output folder at a time)."""
    folder = out_dir / STAGING
    if not folder.is_dir():
        return 0
    left = list(folder.iterdir())
    shutil.rmtree(folder, ignore_errors=True)
    return len(left)


def plan_jobs(
    files: list[Path], out_dir: Path, base: SourcePlan, bundle: ModelBundle, save_video: bool
) -> list[FileJob]:
    names = output_names(files)
    fp = fingerprint(base, bundle.digest, save_video)
    return [
        FileJob(
            str(f),
            str(out_dir),
            names[f],
            replace(base, key=str(f), url=str(f), name=Path(names[f]).name),
            save_video,
            fp,
        )
        for f in files
    ]


def run_batch(
    jobs: list[FileJob],
    bundle: ModelBundle,
    retries: int = 2,
    cpus_per_file: float = 1.0,
    progress: bool = True,
) -> dict:
    """Every job not already done, as Ray tasks; returns counts, failures and aggregate frames/s."""
    import ray
    from tqdm import tqdm

    todo = [j for j in jobs if not is_done(j)]
    skipped = len(jobs) - len(todo)
    task = ray.remote(run_file).options(num_cpus=cpus_per_file, max_retries=retries, retry_exceptions=True)
    ref_bundle = ray.put(bundle)
    started = time.monotonic()
    pending = {task.remote(j, ref_bundle): j for j in todo}
    frames, failed, done = 0, {}, []
    bar = tqdm(total=len(jobs), initial=skipped, unit="file", disable=not progress, file=sys.stderr, dynamic_ncols=True)
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
        for ref in ready:
            job = pending.pop(ref)
            try:
                summary = ray.get(ref)
            except (ray.exceptions.RayError, RuntimeError) as exc:
                failed[job.input] = str(exc).strip().splitlines()[-1][:300]
            else:
                frames += summary["frames"]
                done.append(job.input)
            bar.update(1)
            elapsed = time.monotonic() - started
            bar.set_postfix(fps=f"{frames / max(elapsed, 1e-6):.1f}", failed=len(failed))
    bar.close()
    elapsed = time.monotonic() - started
    return {
        "files": len(jobs),
        "skipped": skipped,
        "processed": len(done),
        "failed": failed,
        "frames": frames,
        "seconds": round(elapsed, 3),
        "fps": round(frames / max(elapsed, 1e-6), 2),
    }
