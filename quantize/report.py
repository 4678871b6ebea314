"""report.json + report.png of a build, both written atomically (temp file in the same folder, then rename)."""

from __future__ import annotations

from pathlib import Path

from inference.fileio import write_bytes as atomic_write_bytes
from inference.fileio import write_json


def plot_variants(path: Path, title: str, variants: dict[str, dict]) -> None:
    """Left: accuracy per variant (mAP50-95 per metric); right: engine throughput (frames/s)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(variants)
    keys = [
        k
        for k in ("box_map", "mask_map", "pose_map")
        if any((variants[n].get("metrics") or {}).get(k) is not None for n in names)
    ]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    width = 0.8 / max(1, len(keys))
    for j, k in enumerate(keys):
        vals = [((variants[n].get("metrics") or {}).get(k) or 0.0) * 100 for n in names]
        bars = ax1.bar([i + j * width for i in range(len(names))], vals, width, label=k.replace("_map", " mAP50-95"))
        ax1.bar_label(bars, fmt="%.1f", fontsize=7)
    ax1.set_xticks([i + width * (len(keys) - 1) / 2 for i in range(len(names))], names)
    ax1.set_ylabel("mAP50-95 (%)")
    ax1.legend(fontsize=8)
    ax1.set_title("accuracy")
    fps = [((variants[n].get("throughput") or {}).get("fps") or 0.0) for n in names]
    bars = ax2.bar(names, fps, color="tab:green")
    ax2.bar_label(bars, fmt="%.1f", fontsize=8)
    ax2.set_ylabel("frames/s (AsyncEngine)")
    ax2.set_title("throughput")
    fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def write_report(folder: Path, report: dict) -> None:
    write_json(Path(folder) / "report.json", report)
    plot_variants(
        Path(folder) / "report.png", f"{report.get('name')} ({report.get('task')})", report.get("variants", {})
    )
