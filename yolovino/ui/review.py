"""The Review tab: the events of an event store (`events: {db: ...}`), newest first, filtered by camera, kind,
class, zone/line and time; each row with its snapshot's thumbnail. Selecting a row plays its clip (when one is
complete), shows the snapshot and the track's events; a plot shows zone entries and line crossings per hour or
day. Wiring only: what is shown comes from ui/review_data.py; the stores are the app's (--events-db, or the
`db:` of the --config sources), never a path typed in the page.
"""

from __future__ import annotations

import logging
from pathlib import Path

import gradio as gr

from yolovino.inference.core.errors import InferenceError
from yolovino.inference.notify.eventdb import EventStore
from yolovino.ui import review_data as rd

log = logging.getLogger(__name__)
FOLLOW_S = 2.0  # how often a page that follows new events looks at the store (two stat calls)


def review_tab(stores: list[Path], tmp_root: Path):
    """Build the tab's content (inside a gr.Tab) and wire it; returns `attach(demo)`, which fills the tab
    when a page loads (call it inside the Blocks context)."""
    thumbs = rd.Thumbnails()
    names = [str(p) for p in stores]
    with gr.Row():
        store_dd = gr.Dropdown(names, value=names[0] if names else None, label="Event store", elem_id="review-store")
        follow = gr.Checkbox(True, label="Follow new events", scale=0, min_width=160, elem_id="review-follow")
        reload_btn = gr.Button("Reload", size="sm", scale=0, min_width=100, elem_id="review-reload")
    timer = gr.Timer(FOLLOW_S)
    seen = gr.State(())  # the store's version (rd.store_version) the listing was made from
    if not names:
        gr.Markdown(
            "No event store: start the app with `--events-db FILE`, or with `--config cams.yaml` whose sources "
            "write one (`events: {db: events.db}`).",
            elem_id="review-none",
        )
    with gr.Row():
        source = gr.Dropdown([rd.ALL], value=rd.ALL, label="Camera", elem_id="review-source")
        kind = gr.Dropdown([rd.ALL], value=rd.ALL, label="Kind", elem_id="review-kind")
        label = gr.Dropdown([rd.ALL], value=rd.ALL, label="Class", elem_id="review-class")
        region = gr.Dropdown([rd.ALL], value=rd.ALL, label="Zone / line", elem_id="review-region")
    with gr.Row():
        since = gr.DateTime(label="From (UTC)", type="timestamp", timezone="UTC", elem_id="review-since")
        until = gr.DateTime(label="To (UTC)", type="timestamp", timezone="UTC", elem_id="review-until")
    status = gr.Markdown(elem_id="review-status")
    table = gr.Dataframe(
        headers=rd.HEADERS,
        datatype=["markdown", "str", "str", "str", "str", "str", "number", "str", "number"],
        interactive=False,
        label="Events (newest first; select a row)",
        elem_id="review-table",
        max_height=520,
        wrap=True,
    )
    ids = gr.State([])
    with gr.Row():
        clip = gr.Video(label="Clip", interactive=False, elem_id="review-clip", height=300)
        snapshot = gr.Image(label="Snapshot", type="numpy", interactive=False, elem_id="review-snapshot", height=300)
    with gr.Row():
        info = gr.Markdown("Select an event.", elem_id="review-details")
        track = gr.Dataframe(
            headers=rd.TRACK_HEADERS, interactive=False, label="The track's events", elem_id="review-track"
        )
    with gr.Row():
        bucket = gr.Radio(["hour", "day"], value="hour", label="Counts per", elem_id="review-bucket")
    plot = gr.BarPlot(
        x="time", y="count", color="series", label="Zone entries and line crossings", elem_id="review-plot"
    )

    def open_store(path) -> EventStore | None:
        if not path or path not in names:  # only the stores the app was started with
            return None
        return EventStore(path)

    def on_store(path, bucket_v):
        try:
            store = open_store(path)
            if store is None:
                return (*(gr.update(choices=[rd.ALL], value=rd.ALL) for _ in range(4)), None)
            c = rd.choices(store)
            dds = (gr.update(choices=c[k], value=rd.ALL) for k in ("source", "kind", "label", "region"))
            return (*dds, rd.counts_frame(store, bucket_v))
        except InferenceError as exc:
            gr.Warning(str(exc))
            return (*(gr.skip() for _ in range(4)), None)

    def on_filter(path, source_v, kind_v, label_v, region_v, since_v, until_v):
        try:
            store = open_store(path)
            if store is None:
                return [], [], "No event store."
            filters = rd.filters_of(source_v, kind_v, label_v, region_v, since_v, until_v)
            table_rows, event_ids, total = rd.rows(store, filters, thumbs)
        except InferenceError as exc:
            return [], [], f"**{exc}**"
        shown = f" (the newest {len(table_rows)} shown)" if total > len(table_rows) else ""
        return table_rows, event_ids, f"{total} event(s) match{shown}."

    def on_tick(path, follow_v, seen_v, *filter_values):
        """Following: the listing, the camera/kind/class/zone choices (current values kept) and the plot are
        made again when the store changed since the listing was made, and left as they are otherwise."""
        version = rd.store_version(path) if follow_v and path in names else ()
        if not version or tuple(seen_v) == version:
            return (*(gr.skip() for _ in range(len(listing) + 5)), gr.skip())
        source_v, kind_v, label_v, region_v, _since, _until, bucket_v = filter_values
        try:
            store = open_store(path)
            c = rd.choices(store) if store is not None else None
        except InferenceError:
            c = None
        if c is None:
            dds = tuple(gr.skip() for _ in range(4))
            plot_v = gr.skip()
        else:
            current = {"source": source_v, "kind": kind_v, "label": label_v, "region": region_v}
            dds = tuple(gr.update(choices=c[k]) if current[k] in c[k] else gr.skip() for k in current)
            plot_v = on_bucket(path, bucket_v, source_v)
        return (*on_filter(path, *filter_values[:6]), *dds, plot_v, version)

    def on_select(path, event_ids, evt: gr.SelectData, request: gr.Request):
        store = open_store(path)
        row = evt.index[0] if evt is not None and evt.index is not None else None
        if store is None or row is None or row >= len(event_ids):
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        event = store.get(event_ids[row])
        if event is None:
            return None, None, "This event is no longer in the store (retention).", []
        text, track_rows = rd.details(store, event)
        image = None
        if event.snapshot:
            import cv2

            bgr = cv2.imread(event.snapshot)
            image = bgr[..., ::-1] if bgr is not None else None
        folder = tmp_root / "review" / (request.session_hash or "page")
        return rd.playable(event, folder), image, text, track_rows

    def on_bucket(path, bucket_v, source_v):
        store = open_store(path)
        return rd.counts_frame(store, bucket_v, source_v) if store is not None else None

    filters = [store_dd, source, kind, label, region, since, until]
    listing = [table, ids, status]
    for ctl in (source, kind, label, region, since, until):
        ctl.change(on_filter, inputs=filters, outputs=listing, trigger_mode="always_last")
    for trigger in (store_dd.change, reload_btn.click):
        trigger(on_store, inputs=[store_dd, bucket], outputs=[source, kind, label, region, plot]).then(
            on_filter, inputs=filters, outputs=listing
        )
    timer.tick(
        on_tick,
        inputs=[store_dd, follow, seen, source, kind, label, region, since, until, bucket],
        outputs=[*listing, source, kind, label, region, plot, seen],
        show_progress="hidden",
        trigger_mode="once",
    )
    table.select(on_select, inputs=[store_dd, ids], outputs=[clip, snapshot, info, track])
    bucket.change(on_bucket, inputs=[store_dd, bucket, source], outputs=[plot])
    source.change(on_bucket, inputs=[store_dd, bucket, source], outputs=[plot])

    def attach(demo) -> None:
        demo.load(on_store, inputs=[store_dd, bucket], outputs=[source, kind, label, region, plot]).then(
            on_filter, inputs=filters, outputs=listing
        )

    return attach
