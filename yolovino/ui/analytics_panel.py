"""The page's analytics section: tracking on/off, a zone, line and motion-mask editor on the video, motion
gating and its drawing, live counts, event log.

Wiring only; the state is ui/analytics_state.py (one per tab, on the Session). A timer refreshes the counts
and the log from that state, so the video handlers stay as they are.

Drawing: pick "zone", "line" or "motion mask", click points on the video (they land in the Points box as
normalised x,y) or type them, name it, press Add. A mask is closed like a zone (last point back to the
first); motion inside it never wakes the detector. "Show motion" draws the gate's motion regions and the
masks on the video.
"""

from __future__ import annotations

import gradio as gr

from yolovino.inference.core.errors import ConfigError
from yolovino.ui.analytics_state import EVENT_HEADERS, AnalyticsState


def analytics_panel(store, sid, image) -> None:
    """Build the analytics section under the video (inside a gr.Blocks context) and wire it.

    store: the SessionStore; sid(request) -> session id; image: the video component to click on."""
    with gr.Accordion("Analytics: tracking, zones and lines, motion, counts, events", open=True):
        with gr.Row():
            tracking = gr.Checkbox(value=True, label="Tracking (IDs and trails)", elem_id="tracking")
            motion = gr.Checkbox(value=False, label="Motion gating (detect only on motion)", elem_id="motion-gating")
            show_motion = gr.Checkbox(value=False, label="Show motion", elem_id="show-motion")
            kind = gr.Radio(["zone", "line", "motion mask"], value="zone", label="Draw", elem_id="draw-kind")
            name = gr.Textbox(label="Name", placeholder="e.g. door", elem_id="region-name", max_lines=1)
            classes = gr.Textbox(
                label="Classes (empty = all)", placeholder="person, car", elem_id="region-classes", max_lines=1
            )
        points = gr.Textbox(
            label="Points (click on the video, or type normalised x,y; x,y; ...)", elem_id="points", max_lines=2
        )
        with gr.Row():
            add = gr.Button("Add", variant="primary", elem_id="add-region", size="sm")
            undo = gr.Button("Clear points", elem_id="clear-points", size="sm")
            clear = gr.Button("Remove all zones and lines", elem_id="clear-regions", size="sm")
            clear_masks = gr.Button("Remove all motion masks", elem_id="clear-masks", size="sm")
        geometry = gr.Markdown("No zones or lines yet.", elem_id="geometry")
        masks = gr.Markdown("No motion masks.", elem_id="masks")
        counts = gr.Markdown("**Tracks active: 0**", elem_id="counts")
        log = gr.Dataframe(
            headers=EVENT_HEADERS, label="Event log (newest first)", interactive=False, elem_id="events", max_height=260
        )
        timer = gr.Timer(1.0)

    def state(request: gr.Request) -> AnalyticsState:
        return store.get(sid(request)).analytics

    def on_click(text, evt: gr.SelectData, request: gr.Request):
        hw = state(request).frame_hw
        if evt is None or evt.index is None or hw is None:  # the index is in the frame's own pixels
            return gr.skip()
        x, y = evt.index[0] / hw[1], evt.index[1] / hw[0]
        return f"{text.strip() + '; ' if text and text.strip() else ''}{x:.3f},{y:.3f}"

    def on_add(k, n, text, cls, request: gr.Request):
        s = state(request)
        try:
            if k == "motion mask":
                s.add_mask(n, text)
            else:
                s.add(k, n, text, cls)  # the lists below show it
        except ConfigError as exc:
            gr.Warning(str(exc))
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        return "", "", s.geometry_md(), s.masks_md()

    def on_clear(request: gr.Request):
        state(request).clear()
        return state(request).geometry_md()

    def on_clear_masks(request: gr.Request):
        state(request).clear_masks()
        return state(request).masks_md()

    def on_tracking(on, request: gr.Request):
        state(request).set_enabled(on)

    def on_motion(on, request: gr.Request):
        state(request).set_motion(on)
        if on and not state(request).enabled:  # the gate is attached once tracking is back on
            gr.Warning("Motion gating needs tracking (the tracker carries the boxes between detections): turn it on.")

    def on_show_motion(on, request: gr.Request):
        state(request).set_show_motion(on)

    def refresh(request: gr.Request):
        s = state(request)
        return s.counts_md(), s.log_rows()

    image.select(on_click, inputs=[points], outputs=[points])
    add.click(on_add, inputs=[kind, name, points, classes], outputs=[points, name, geometry, masks])
    undo.click(lambda: "", outputs=[points])
    clear.click(on_clear, outputs=[geometry])
    clear_masks.click(on_clear_masks, outputs=[masks])
    tracking.change(on_tracking, inputs=[tracking])
    motion.change(on_motion, inputs=[motion])
    show_motion.change(on_show_motion, inputs=[show_motion])
    timer.tick(refresh, outputs=[counts, log], show_progress="hidden")
