"""What the page's events do: each handler maps control values to a tab's Session and its Updates to outputs.

Handlers never raise into Gradio: problems become one readable status line (tracebacks go to the server log).
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import gradio as gr

from yolovino.inference.core.errors import InferenceError
from yolovino.inference.core.redact import one_line
from yolovino.ui.catalog import Catalog, report_notes, report_table, report_verdicts
from yolovino.ui.context import UIContext, UserFacingError
from yolovino.ui.session import SessionStore
from yolovino.ui.view import class_ids_for, missing_models_message

log = logging.getLogger(__name__)


class Handlers:
    """The event handlers of one Blocks app, bound to its context and session store."""

    def __init__(self, ctx: UIContext, store: SessionStore):
        self.ctx, self.store = ctx, store

    def sid(self, request: gr.Request | None) -> str:
        return getattr(request, "session_hash", None) or "local"

    def status_md(self, text: str, kind: str = "info") -> str:
        icon = {"info": "", "warn": "⚠️ ", "error": "❌ "}[kind]
        return f"{icon}{text}"

    def initial_status(self, cat: Catalog) -> str:
        if not cat.models:
            return self.status_md(missing_models_message(cat.models_dir), "warn")
        return "Pick a sample clip (or type an RTSP/HTTP URL) and press **Start**; or upload a file; or use the webcam."

    def fail(self, exc: BaseException) -> str:
        """A page-readable line for any exception; tracebacks go to the server log only."""
        if isinstance(exc, (UserFacingError, InferenceError)):
            msg = one_line(exc, limit=300)
            gr.Warning(msg)
            return self.status_md(msg, "warn")
        log.exception("UI handler failed")
        msg = f"Internal error ({type(exc).__name__}): {one_line(exc, limit=300)}"
        gr.Warning(msg)
        return self.status_md(msg, "error")

    def sync(self, model, precision, conf, iou, classes, rect, device, request: gr.Request):
        """Apply the page's current control values to this tab's session."""
        session = self.store.get(self.sid(request))
        cat = self.ctx.catalog()
        entry = session.select(model, precision, cat)
        session.set_thresholds(conf, iou, class_ids_for(classes, entry.names), rect, device)
        return session, entry

    def on_load(self, model, precision, conf, iou, classes, rect, device, request: gr.Request):
        try:
            self.sync(model, precision, conf, iou, classes, rect, device, request)
        except Exception as exc:
            if not isinstance(exc, (UserFacingError, InferenceError)):
                log.exception("on_load")
            return self.initial_status(self.ctx.catalog())
        return gr.skip()

    def on_model(self, model, request: gr.Request):
        try:
            cat = self.ctx.catalog()
            session = self.store.get(self.sid(request))
            entry = session.select(model, None, cat)
            return (
                gr.update(choices=entry.precisions, value=session.precision),
                f"Task: **{entry.task}**",
                gr.update(choices=list(entry.names.values()), value=[]),
                self.status_md(f"Model {entry.name} {session.precision} ({entry.task}) selected."),
            )
        except Exception as exc:  # noqa: BLE001
            return gr.skip(), gr.skip(), gr.skip(), self.fail(exc)

    def on_precision(self, model, precision, request: gr.Request):
        try:
            session = self.store.get(self.sid(request))
            entry = session.select(model, precision)
            return self.status_md(f"Model {entry.name} {session.precision} ({entry.task}) selected.")
        except Exception as exc:  # noqa: BLE001
            return self.fail(exc)

    def on_thresholds(self, model, conf, iou, classes, rect, device, request: gr.Request):
        try:
            session = self.store.get(self.sid(request))
            names = self.ctx.catalog().get(model).names if model else {}
            session.set_thresholds(conf, iou, class_ids_for(classes, names), rect, device)
            return gr.skip()
        except Exception as exc:  # noqa: BLE001
            return self.fail(exc)

    def on_refresh(self, model, precision):
        """Re-scan the models folder (e.g. after `yolovino-quantize` built an INT8 variant)."""
        cat = self.ctx.catalog()
        value = model if model in cat.models else cat.default_model()
        note = (
            self.initial_status(cat)
            if not cat.models
            else self.status_md(f"Found {len(cat.models)} model(s): {', '.join(cat.names)}.")
        )
        entry = cat.models.get(value) if value else None
        prec = (
            gr.update(
                choices=entry.precisions, value=precision if precision in entry.variants else entry.default_precision()
            )
            if entry
            else gr.update(choices=[], value=None)
        )
        return gr.update(choices=cat.names, value=value), gr.update(choices=cat.names, value=value), prec, note

    def outputs_of(self, upd, with_files=False):
        out = [
            gr.skip() if upd.image is None else upd.image,
            gr.skip() if upd.stats is None else upd.stats,
            gr.skip() if upd.table is None else upd.table,
            gr.skip() if upd.status is None else self.status_md(upd.status),
        ]
        if with_files:
            out.append(gr.skip() if upd.files is None else (upd.files or None))
        return tuple(out)

    def run_stream(self, source, model, precision, conf, iou, classes, rect, device, request: gr.Request):
        try:
            session, _ = self.sync(model, precision, conf, iou, classes, rect, device, request)
            for upd in session.stream(source):
                yield self.outputs_of(upd)
        except Exception as exc:  # noqa: BLE001
            yield gr.skip(), gr.skip(), gr.skip(), self.fail(exc)

    def run_upload(
        self, path, model, precision, conf, iou, classes, rect, device, request: gr.Request, progress=gr.Progress()
    ):
        try:
            session, _ = self.sync(model, precision, conf, iou, classes, rect, device, request)
            for upd in session.process_upload(path, progress):
                yield self.outputs_of(upd, with_files=True)
        except Exception as exc:  # noqa: BLE001
            yield gr.skip(), gr.skip(), gr.skip(), self.fail(exc), gr.skip()

    def run_webcam(self, frame, model, precision, conf, iou, classes, rect, device, request: gr.Request):
        try:
            session, _ = self.sync(model, precision, conf, iou, classes, rect, device, request)
            upd = session.webcam_frame(frame)
            upd.status = upd.status or (
                f"Webcam: {session.model_name} {session.precision}" if frame is not None else None
            )
            return self.outputs_of(upd)
        except Exception as exc:  # noqa: BLE001
            return gr.skip(), gr.skip(), gr.skip(), self.fail(exc)

    def on_stop(self, request: gr.Request):
        self.store.get(self.sid(request)).stop()
        return self.status_md("Stopping ...")

    def on_unload(self, request: gr.Request):
        self.store.drop(self.sid(request))

    def show_report(self, model):
        cat = self.ctx.catalog()
        if not cat.models:
            return self.status_md(missing_models_message(cat.models_dir), "warn"), gr.update(value=None), None, ""
        if model not in cat.models:
            return self.status_md(f"Pick a model ({', '.join(cat.names)})."), gr.update(value=None), None, ""
        entry = cat.models[model]
        headers, rows = report_table(entry.report_json)
        variants = ", ".join(f"{p} ({v.xml.parent.name}/{v.xml.name})" for p, v in entry.variants.items())
        text = f"**{entry.name}**: task **{entry.task}**, {len(entry.names)} classes, variants: {variants}."
        notes = "\n".join(f"- `{n}`" for n in report_notes(entry.report_json))
        verdicts = report_verdicts(entry.report_json)
        if verdicts:  # INT8 vs FP32 with paired 95 % intervals: which differences are real
            text += "\n\n" + "\n".join(f"- {v}" for v in verdicts)
        if entry.report_json is None:
            text += (
                f"\n\nNo report.json yet in `{cat.models_dir / entry.name}`; "
                f"`yolovino-quantize` writes it with accuracy and speed of each variant."
            )
        table = {"headers": headers, "data": rows} if rows else gr.update(value=None)
        return text, table, _read_rgb(entry.report_png), notes


def _read_rgb(path: Path | None):
    if path is None or not Path(path).is_file():
        return None
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return None if img is None else img[..., ::-1].copy()
