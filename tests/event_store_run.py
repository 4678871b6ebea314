"""A real headless run (`app.py --headless --config`) of the car sample clip with a line, a zone, snapshots,
the JSONL events file, event clips of its line crossings and the SQLite event store: what the event-store
and Review-tab tests read.

Run once per pytest session (the result is kept under the session's base temp folder), ~20 s here.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCE = "lane"


@dataclass
class StoreRun:
    folder: Path
    db: Path
    jsonl: Path
    snapshots: Path
    clip: Path  # the sample clip that was run
    clips: Path  # the event clips' folder (outputs/clips.py)


def headless_store(tmp_path_factory, detect_ir: Path, clip: Path) -> StoreRun:
    folder = tmp_path_factory.getbasetemp() / "headless-event-store"
    run = StoreRun(folder, folder / "events.db", folder / "events.jsonl", folder / "snaps", clip, folder / "clips")
    if (folder / "done").exists():
        return run
    folder.mkdir(exist_ok=True)
    cfg = folder / "cams.yaml"
    cfg.write_text(
        f"""sources:
  - url: {clip}
    name: {SOURCE}
    live: false
    analytics:
      lines: [{{name: middle, points: [[0.0, 0.5], [1.0, 0.5]], anchor: center}}]
      zones: [{{name: top, points: [[0.0, 0.0], [1.0, 0.0], [1.0, 0.4], [0.0, 0.4]], anchor: center}}]
      events:
        jsonl: {run.jsonl}
        db: {run.db}
        snapshots: {{dir: {run.snapshots}, kinds: [line_crossed, zone_entered, track_appeared, zone_left]}}
        clips: {{dir: {run.clips}, pre_s: 2, post_s: 2, kinds: [line_crossed]}}
"""
    )
    cmd = [sys.executable, "app.py", "--headless", "--model", str(detect_ir), "--config", str(cfg)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and " WARNING " not in proc.stderr, proc.stderr[-3000:]
    (folder / "done").write_text("ok\n")
    return run
