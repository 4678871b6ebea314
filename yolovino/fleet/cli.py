"""`yolovino-fleet`: the live fleet, its status, batches of files, and Ray's CLI with loopback kept.

    yolovino-fleet live   --address HEAD:PORT --config cams.yaml [--cameras-per-node N] [headless flags]
    yolovino-fleet status --address HEAD:PORT [--json]
    yolovino-fleet batch  --address HEAD:PORT --out DIR [--save-video] [--analytics FILE] [--retries N]
                           [headless flags: --model --conf --iou --classes ...] FILE_OR_FOLDER...
    yolovino-fleet ray ARGS...        # `ray ARGS...`, loopback addresses kept (one-machine clusters)

The address may also come from $RAY_ADDRESS. Exit codes: 0 ok, 1 a failure at run time (files that
failed, no fleet to show), 2 usage or configuration errors (one line, no traceback).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

from yolovino.fleet.cluster import FleetError


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise FleetError(message)


# the headless mode's model flags, declared here so that batch's file list is parsed right; passed on as given
MODEL_FLAGS = {"--model": 1, "--conf": 1, "--iou": 1, "--classes": 1, "--hint": 1, "--device": 1, "--cache-dir": 1}
MODEL_SWITCHES = ("--no-rect", "--no-cache")


def _model_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model (as yolovino --headless)")
    for flag in MODEL_FLAGS:
        g.add_argument(flag, dest=flag, metavar=flag.strip("-").upper().replace("-", "_"))
    for flag in MODEL_SWITCHES:
        g.add_argument(flag, dest=flag, action="store_true")


def _passed(args: argparse.Namespace) -> list[str]:
    """The model flags given, as the yolovino command line."""
    out: list[str] = []
    for flag in MODEL_FLAGS:
        if getattr(args, flag) is not None:
            out += [flag, getattr(args, flag)]
    return out + [flag for flag in MODEL_SWITCHES if getattr(args, flag)]


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="yolovino-fleet", description="YOLO video analytics on a Ray cluster.")
    sub = p.add_subparsers(dest="command", required=True)
    live = sub.add_parser("live", help="run the cameras of a headless YAML across the cluster")
    live.add_argument("--address", help="the Ray head, HOST:PORT (default: $RAY_ADDRESS)")
    live.add_argument(
        "--cameras-per-node",
        type=int,
        metavar="N",
        help="capacity of nodes started without a fleet_cameras resource (default: no limit)",
    )
    live.add_argument("--report-every", type=float, default=10.0, metavar="S", help="log the table every S s")
    live.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    _model_flags(live)
    status = sub.add_parser("status", help="per camera: node, state, FPS, last frame, restarts")
    status.add_argument("--address")
    status.add_argument("--json", action="store_true", help="the table as JSON")
    batch = sub.add_parser("batch", help="process video files as Ray tasks (resumable)")
    batch.add_argument("inputs", nargs="+", metavar="FILE_OR_FOLDER")
    batch.add_argument("--address")
    batch.add_argument("--out", required=True, metavar="DIR", help="output folder (one batch at a time)")
    batch.add_argument("--save-video", action="store_true", help="also write each file's annotated mp4")
    batch.add_argument("--analytics", metavar="YAML", help="tracking/zones/lines/events for every file")
    batch.add_argument("--retries", type=int, default=2, help="tries again per failed file (default 2)")
    batch.add_argument("--cpus-per-file", type=float, default=1.0, help="Ray CPUs each file's task reserves")
    batch.add_argument("--summary", metavar="FILE.json", help="write the batch's counts here")
    batch.add_argument("--no-progress", action="store_true")
    batch.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    _model_flags(batch)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["ray"]:
            from yolovino.fleet.raycli import ray_main

            return ray_main(argv[1:])
        args, rest = _parser().parse_known_args(argv)
        if args.command == "status":
            if rest:
                raise FleetError(f"unrecognized arguments: {' '.join(rest)}")
            from yolovino.fleet.status import show

            return show(args.address, args.json)
        logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        if args.command == "live":
            return _live(args, _passed(args) + rest)
        if rest:
            raise FleetError(f"unrecognized arguments: {' '.join(rest)}")
        return _batch(args, _passed(args))
    except FleetError as exc:
        print(f"fleet: error: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:  # the runtime installed without the fleet extra
        from yolovino.common.extras import missing_extra

        message = missing_extra(exc, "yolovino-fleet")
        if message is None:
            raise
        print(f"fleet: error: {message}", file=sys.stderr)
        return 2


def _live(args: argparse.Namespace, rest: list[str]) -> int:
    from yolovino.fleet.cluster import connect
    from yolovino.fleet.config import live_plans
    from yolovino.fleet.live import Controller

    plans, settings = live_plans(rest)
    connect(args.address)
    stop = threading.Event()

    def on_signal(signum, _frame):
        logging.getLogger("yolovino.fleet.live").info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    ctl = Controller(plans, settings, args.cameras_per_node)
    try:
        ctl.run(stop, report_every=args.report_every)
    finally:
        ctl.close()
    return 0


def _batch(args: argparse.Namespace, rest: list[str]) -> int:
    import json

    from yolovino.fleet.batch import clear_staging, find_inputs, plan_jobs, run_batch
    from yolovino.fleet.cluster import connect
    from yolovino.fleet.config import batch_plan
    from yolovino.fleet.models import ModelBundle
    from yolovino.inference.core.fileio import write_json

    if args.retries < 0:
        raise FleetError("--retries must be >= 0")
    files = find_inputs(args.inputs)
    analytics = None
    if args.analytics:
        import yaml

        try:
            analytics = yaml.safe_load(Path(args.analytics).read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise FleetError(f"{args.analytics}: {str(exc).splitlines()[0]}") from None
    base = batch_plan(str(files[0]), rest, analytics)
    try:
        bundle = ModelBundle.read(base.model)
    except ValueError as exc:
        raise FleetError(str(exc)) from None
    out = Path(args.out).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    jobs = plan_jobs(files, out, base, bundle, args.save_video)
    left = clear_staging(out)
    if left:
        print(f"fleet: removed {left} partial output folder(s) of an earlier, interrupted run", file=sys.stderr)
    connect(args.address, log_to_driver=False)
    report = run_batch(jobs, bundle, args.retries, args.cpus_per_file, progress=not args.no_progress)
    for path, why in report["failed"].items():
        print(f"fleet: failed: {path}: {why}", file=sys.stderr)
    print(
        f"fleet batch: {report['files']} files: {report['processed']} processed, {report['skipped']} skipped "
        f"(already done), {len(report['failed'])} failed; {report['frames']} frames in {report['seconds']:.1f} s "
        f"({report['fps']:.1f} frames/s)"
    )
    if args.summary:
        write_json(args.summary, report)
    else:
        logging.getLogger("yolovino.fleet.batch").info("%s", json.dumps(report))
    return 1 if report["failed"] else 0
