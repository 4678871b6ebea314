"""The Gradio Blocks page: layout and wiring. `ui.handlers` maps events to `ui.session` / `ui.uploads` work.

Layout: a "Live" tab (controls on the left; clip/URL, upload and webcam inputs on the right with the
annotated image, stats and the detections table), a "Models" tab (each model's report.json + .png) and a
"Review" tab (the events of the app's event stores, ui/review.py).
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
from pathlib import Path

from yolovino.common.allow import AllowList
from yolovino.common.paths import assets_root
from yolovino.inference.core.config import InferenceConfig
from yolovino.inference.core.errors import InferenceError
from yolovino.inference.core.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES, is_loopback
from yolovino.ui.context import UIContext
from yolovino.ui.session import SessionStore
from yolovino.ui.view import TABLE_HEADERS

log = logging.getLogger(__name__)

TITLE = "YOLO INT8 video analytics (OpenVINO, CPU)"
DEFAULT_MAX_FILE = "200mb"


class UIError(InferenceError):
    """The UI cannot start as asked (e.g. a public address without auth)."""


def check_bind(host: str, auth) -> None:
    """Refuse to serve a non-loopback address without a password."""
    if not is_loopback(host) and not auth:
        raise UIError(
            f"refusing to serve the UI on {host} without authentication: pass a user and password "
            f"(--auth user:password) or bind to 127.0.0.1"
        )


def _parse_size(size: str | int) -> int:
    if isinstance(size, int):
        return size
    text = str(size).strip().lower()
    for unit, mult in (("gb", 2**30), ("mb", 2**20), ("kb", 2**10), ("b", 1)):
        if text.endswith(unit):
            return int(float(text[: -len(unit)]) * mult)
    return int(text)


def build_demo(
    models_dir: str | Path = Path("models"),
    default_source: str | Path | None = None,
    config: InferenceConfig | None = None,
    samples_dir: str | Path | None = None,
    tmp_root: str | Path | None = None,
    max_file_size: str | int = DEFAULT_MAX_FILE,
    allow_sources: AllowList | None = None,
    event_stores: list[Path] | None = None,
):
    """The gr.Blocks app (not launched); the session store hangs on demo.ui_store. event_stores: the SQLite
    event stores the Review tab may show."""
    import gradio as gr

    from yolovino.ui.handlers import Handlers
    from yolovino.ui.widgets import LiveImage

    default_url = str(default_source) if default_source and "://" in str(default_source) else None
    default_source = Path(default_source) if default_source and not default_url else None
    if samples_dir is None:
        samples_dir = (
            default_source.parent if default_source and default_source.parent.is_dir() else assets_root() / "videos"
        )
    ctx = UIContext(
        models_dir=Path(models_dir),
        samples_dir=Path(samples_dir),
        default_source=default_source,
        config=config or InferenceConfig(),
        tmp_root=Path(tmp_root) if tmp_root else Path(tempfile.mkdtemp(prefix="yolo-ui-")),
        max_file_bytes=_parse_size(max_file_size),
        allow=allow_sources or AllowList(),
    )
    store = SessionStore(ctx)
    catalog = ctx.catalog()
    samples = ctx.samples()
    model0 = catalog.default_model()
    entry0 = catalog.models.get(model0) if model0 else None

    h = Handlers(ctx, store)

    # --- layout ---------------------------------------------------------------------------------------
    names0 = list(entry0.names.values()) if entry0 else []
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=(900, 3600)) as demo:
        gr.Markdown(f"## {TITLE}")
        with gr.Tabs():
            with gr.Tab("Live", id="live"):
                with gr.Row():
                    with gr.Column(scale=1, min_width=260):
                        model_dd = gr.Dropdown(
                            choices=catalog.names,
                            value=model0,
                            label="Model",
                            elem_id="model",
                            allow_custom_value=False,
                        )
                        precision = gr.Radio(
                            choices=entry0.precisions if entry0 else [],
                            value=entry0.default_precision() if entry0 else None,
                            label="Precision",
                            elem_id="precision",
                        )
                        task_md = gr.Markdown(f"Task: **{entry0.task}**" if entry0 else "Task: -", elem_id="task")
                        refresh = gr.Button("Refresh model list", size="sm", elem_id="refresh")
                        conf = gr.Slider(
                            0.01, 1.0, value=ctx.config.conf, step=0.01, label="Confidence threshold", elem_id="conf"
                        )
                        iou = gr.Slider(
                            0.05, 1.0, value=ctx.config.iou, step=0.01, label="IoU threshold (NMS)", elem_id="iou"
                        )
                        classes = gr.Dropdown(
                            choices=names0,
                            value=[],
                            multiselect=True,
                            label="Classes to show (empty = all)",
                            elem_id="classes",
                        )
                        rect = gr.Checkbox(
                            value=ctx.config.rect, label="Rectangular input (faster on 16:9)", elem_id="rect"
                        )
                        device = gr.Dropdown(
                            choices=device_choices(ctx.config.device),
                            value=ctx.config.device,
                            label="Device (OpenVINO)",
                            elem_id="device",
                        )
                    with gr.Column(scale=3):
                        with gr.Tabs():
                            with gr.Tab("Clip / URL", id="clip"):
                                source = gr.Textbox(
                                    value=default_url or (samples[0] if samples else ""),
                                    elem_id="source",
                                    label="Source: a sample clip name, or an rtsp:// / http(s):// URL",
                                )
                                if samples:
                                    gr.Examples(
                                        examples=[[s] for s in samples],
                                        inputs=[source],
                                        label="Sample clips (click one)",
                                    )
                                with gr.Row():
                                    start = gr.Button("Start", variant="primary", elem_id="start")
                                    stop = gr.Button("Stop", variant="stop", elem_id="stop")
                            with gr.Tab("Upload", id="upload"):
                                upload = gr.File(
                                    label="Video or image file",
                                    type="filepath",
                                    elem_id="upload",
                                    file_types=sorted(VIDEO_SUFFIXES | IMAGE_SUFFIXES),
                                )
                                with gr.Row():
                                    process = gr.Button("Process file", variant="primary", elem_id="process")
                                    stop2 = gr.Button("Stop", variant="stop", elem_id="stop-upload")
                                downloads = gr.File(
                                    label="Annotated video and JSON lines",
                                    file_count="multiple",
                                    interactive=False,
                                    elem_id="downloads",
                                )
                            with gr.Tab("Webcam", id="webcam-tab"):
                                cam = gr.Image(
                                    sources=["webcam"], streaming=True, type="numpy", label="Webcam", elem_id="webcam"
                                )
                        status = gr.Markdown(h.initial_status(catalog), elem_id="status")
                        output = LiveImage(
                            label="Annotated", format="jpeg", interactive=False, elem_id="output", height=480
                        )
                        stats = gr.Markdown("FPS: -", elem_id="stats")
                        table = gr.Dataframe(
                            headers=TABLE_HEADERS,
                            label="Detections in the current frame",
                            interactive=False,
                            elem_id="detections",
                            max_height=300,
                        )
                        from yolovino.ui.analytics_panel import analytics_panel  # imports gradio, like this function

                        analytics_panel(store, h.sid, output)
            with gr.Tab("Models", id="models"):
                report_model = gr.Dropdown(choices=catalog.names, value=model0, label="Model", elem_id="report-model")
                report_md = gr.Markdown(elem_id="report-status")
                report_df = gr.Dataframe(label="report.json", interactive=False, elem_id="report-table")
                report_img = gr.Image(label="report.png", format="png", interactive=False, elem_id="report-png")
                with gr.Accordion("Report settings (calibration, validation data, versions)", open=False):
                    report_notes_md = gr.Markdown(elem_id="report-notes")
            with gr.Tab("Review", id="review"):
                from yolovino.ui.review import review_tab  # imports gradio, like this function

                attach_review = review_tab(list(event_stores or []), ctx.tmp_root)

        controls = [model_dd, precision, conf, iou, classes, rect, device]
        live_out = [output, stats, table, status]
        demo.load(h.on_load, inputs=controls, outputs=[status])
        demo.load(h.show_report, inputs=[report_model], outputs=[report_md, report_df, report_img, report_notes_md])
        model_dd.change(h.on_model, inputs=[model_dd], outputs=[precision, task_md, classes, status])
        precision.change(h.on_precision, inputs=[model_dd, precision], outputs=[status])
        for ctl in (conf, iou, classes, rect, device):  # thresholds swap in from the next frame; rect/device rebuild
            ctl.change(
                h.on_thresholds,
                inputs=[model_dd, conf, iou, classes, rect, device],
                outputs=[status],
                trigger_mode="always_last",
            )
        refresh.click(h.on_refresh, inputs=[model_dd, precision], outputs=[model_dd, report_model, precision, status])
        start.click(h.run_stream, inputs=[source, *controls], outputs=live_out, concurrency_limit=None)
        process.click(h.run_upload, inputs=[upload, *controls], outputs=[*live_out, downloads], concurrency_limit=None)
        cam.stream(
            h.run_webcam,
            inputs=[cam, *controls],
            outputs=live_out,
            stream_every=0.15,
            concurrency_limit=None,
            time_limit=600,
            show_progress="hidden",
        )
        stop.click(h.on_stop, outputs=[status])
        stop2.click(h.on_stop, outputs=[status])
        report_model.change(
            h.show_report, inputs=[report_model], outputs=[report_md, report_df, report_img, report_notes_md]
        )
        demo.unload(h.on_unload)
        attach_review(demo)
    demo.ui_store = store
    demo.ui_context = ctx
    return demo


def device_choices(current: str) -> list[str]:
    """The devices OpenVINO sees here, AUTO, and the configured one (so a CLI choice shows as selected)."""
    import openvino as ov

    choices = list(ov.Core().available_devices) + ["AUTO"]
    return choices if current in choices else [current, *choices]


def _sigterm_as_interrupt() -> None:
    """SIGTERM ends the server like Ctrl-C (Gradio closes, temp files go); Python's default would skip that."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):

        def _raise(signum, frame):
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, _raise)


def launch(
    host: str = "127.0.0.1",
    port: int = 7860,
    auth: tuple[str, str] | None = None,
    models_dir: str | Path = Path("models"),
    default_source: str | Path | None = None,
    config: InferenceConfig | None = None,
    max_file_size: str | int = DEFAULT_MAX_FILE,
    samples_dir: str | Path | None = None,
    allow_sources: AllowList | None = None,
    event_stores: list[Path] | None = None,
    prevent_thread_lock: bool = False,
    quiet: bool = False,
):
    """Serve the UI (blocks until stopped, unless prevent_thread_lock). Temp outputs are removed on exit."""
    check_bind(host, auth)
    tmp_root = Path(tempfile.mkdtemp(prefix="yolo-ui-"))
    os.environ.setdefault("GRADIO_TEMP_DIR", str(tmp_root / "gradio"))
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

    def cleanup():
        shutil.rmtree(tmp_root, ignore_errors=True)

    atexit.register(cleanup)
    _sigterm_as_interrupt()
    demo = build_demo(
        models_dir,
        default_source,
        config,
        samples_dir,
        tmp_root / "outputs",
        max_file_size,
        allow_sources,
        event_stores,
    )
    demo.queue(default_concurrency_limit=4, max_size=64)
    try:
        demo.launch(
            server_name=host,
            server_port=port,
            auth=auth,
            max_file_size=max_file_size,
            show_error=False,
            allowed_paths=[str(tmp_root)],
            ssr_mode=False,
            share=False,
            prevent_thread_lock=prevent_thread_lock,
            quiet=quiet,
            footer_links=[],
            inbrowser=False,
            mcp_server=False,
            pwa=False,
        )
    finally:
        if not prevent_thread_lock:
            demo.ui_store.close_all()
            cleanup()
    return demo
