"""A short soak (1 minute, a sample every 2.5 s) of the headless pipeline on a looping source: memory, threads
and open files stay flat and frames keep flowing. The full 30-minute run is `bench/soak.py`."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _soak_module():
    spec = importlib.util.spec_from_file_location("bench_soak", REPO_ROOT / "bench" / "soak.py")
    module = sys.modules.get("bench_soak")
    if module is None:
        module = importlib.util.module_from_spec(spec)
        sys.modules["bench_soak"] = module  # dataclasses look the module up by name
        spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_short_soak_is_flat(tmp_path, detect_ir, video_clip):
    soak = _soak_module()
    result = soak.run_soak(minutes=1, interval=2.5, model=detect_ir, clip=video_clip, out_dir=tmp_path, echo=False)
    detail = json.dumps(result.checks, indent=1) + "\n" + "\n".join(result.notes)
    assert len(result.samples) >= 20, (
        f"only {len(result.samples)} samples\n{detail}\n" + (tmp_path / "soak-child.log").read_text()[-2000:]
    )
    assert set(result.checks) == {"rss", "threads", "fds", "frames"}
    assert result.passed, detail
    saved = json.loads((tmp_path / "soak.json").read_text())
    assert saved["passed"] is True and len(saved["samples"]) == len(result.samples)
    assert (tmp_path / "soak.png").stat().st_size > 0


def test_verdict_rules():
    """The verdict arithmetic on made-up samples: a leak, a thread leak and a stalled pipeline each fail."""
    soak = _soak_module()
    S = soak.Sample

    def series(rss, threads=None, fds=None, frames=None):
        n = len(rss)
        threads = threads or [10] * n
        fds = fds or [7] * n
        frames = frames or [100 * i for i in range(n)]
        return [
            S(t=5.0 * i, rss_mb=r, threads=th, fds=fd, cpu_percent=50.0, frames=fr)
            for i, (r, th, fd, fr) in enumerate(zip(rss, threads, fds, frames))
        ]

    flat = series([200.0] * 5 + [250.0] * 20)  # growth during warm-up only
    assert all(c["ok"] for c in soak.evaluate(flat, True).values())
    leak = series([250.0 + 1.0 * i for i in range(25)])  # +20 MB over the judged part (> 5 %)
    assert not soak.evaluate(leak, True)["rss"]["ok"]
    threads = series([250.0] * 25, threads=[10] * 20 + [14] * 5)
    assert not soak.evaluate(threads, True)["threads"]["ok"]
    fds = series([250.0] * 25, fds=[7] * 10 + [8] * 10 + [12] * 5)
    assert not soak.evaluate(fds, True)["fds"]["ok"]
    stalled = series([250.0] * 25, frames=[100 * min(i, 15) for i in range(25)])
    assert not soak.evaluate(stalled, True)["frames"]["ok"]
    assert not soak.evaluate(flat, False)["frames"]["ok"]  # the child died
    assert not all(c["ok"] for c in soak.evaluate(flat[:3], True).values())  # too few samples
