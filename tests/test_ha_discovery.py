"""Events with their pictures (MQTT, webhook) and Home Assistant MQTT discovery, against a real Mosquitto.

A paho subscriber checks every discovery config against Home Assistant's documented schema for MQTT
sensors and binary sensors (the keys each accepts, the required ones, a unique `unique_id`, the device's
identifiers, availability), renders each entity's `value_template` with Jinja (what Home Assistant does)
against the retained counts message its `state_topic` really received, and follows the camera's
availability (online, then offline at a clean shutdown) and the entities' removal (a camera removed by a
live reload, a zone removed by the editor). The events come from the analytics stage on the synthetic
scene of test_event_sinks.py (a person walking across a line into a zone), drawn over a real frame of a
shared clip, so the snapshots are real JPEGs.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re

import cv2
import numpy as np
import pytest
from conftest import require_asset
from mqtt_broker import Mosquitto, mosquitto_available
from test_event_sinks import NAMES, Cam, Hook, Subscriber, crossing_frames
from waiting import wait_until

from yolovino.inference.analytics.config import parse_analytics, resolve_classes
from yolovino.inference.analytics.stage import Analytics
from yolovino.inference.analytics.zones import ZoneSpec
from yolovino.inference.core.events import Event
from yolovino.inference.core.results import Frame
from yolovino.inference.notify.hub import EventHub

ZONE = "loading bay"  # a name with a space: its ids are slugs, its templates quote it
# Home Assistant's documented options of MQTT sensors, binary sensors and images (integrations sensor.mqtt,
# binary_sensor.mqtt, image.mqtt) and of the shared `device`, `origin` and `availability` mappings
ENTITY = {
    "availability", "availability_mode", "availability_template", "availability_topic", "device",
    "enabled_by_default", "encoding", "entity_category", "entity_picture", "icon", "json_attributes_template",
    "json_attributes_topic", "name", "default_entity_id", "origin", "payload_available", "payload_not_available",
    "platform", "unique_id",
}  # fmt: skip
COMMON = {
    "availability", "availability_mode", "availability_template", "availability_topic", "device",
    "device_class", "enabled_by_default", "encoding", "entity_category", "entity_picture", "expire_after",
    "force_update", "icon", "json_attributes_template", "json_attributes_topic", "name", "default_entity_id",
    "origin", "payload_available", "payload_not_available", "platform", "qos", "state_topic", "unique_id",
    "value_template",
}  # fmt: skip
KEYS = {
    "sensor": COMMON | {"last_reset_value_template", "options", "state_class", "suggested_display_precision",
                        "unit_of_measurement"},
    "binary_sensor": COMMON | {"off_delay", "payload_off", "payload_on"},
    "image": ENTITY | {"content_type", "image_encoding", "image_topic", "url_template", "url_topic"},
}  # fmt: skip
DEVICE_KEYS = {"configuration_url", "connections", "hw_version", "identifiers", "manufacturer", "model",
               "model_id", "name", "serial_number", "suggested_area", "sw_version", "via_device"}  # fmt: skip
STATE_CLASSES = {"measurement", "total", "total_increasing"}
CONFIG_TOPIC = re.compile(r"^homeassistant/(sensor|binary_sensor|image)/([A-Za-z0-9_-]+)/([A-Za-z0-9_-]+)/config$")


@pytest.fixture
def broker():
    if not mosquitto_available():
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("mosquitto (Debian package) is required under CI")
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    b = Mosquitto()
    yield b
    b.cleanup()


@pytest.fixture(scope="module")
def real_frame() -> np.ndarray:
    """An 800x400 frame of a shared clip: the background the synthetic person walks over."""
    cap = cv2.VideoCapture(str(require_asset("videos/car-detection.mp4")))
    ok, image = cap.read()
    cap.release()
    assert ok
    return cv2.resize(image, (800, 400))


def analytics_for(cams: list[str], events: dict) -> Analytics:
    raw = {
        "lines": [{"name": "gate", "points": [[0.5, 0.0], [0.5, 1.0]]}],
        "zones": [{"name": ZONE, "points": [[0.6, 0.0], [1.0, 0.0], [1.0, 1.0], [0.6, 1.0]]}],
        "events": events,
    }
    cfg = resolve_classes(parse_analytics(raw), NAMES)
    return Analytics(dict.fromkeys(cams, cfg), hub=EventHub.build(dict.fromkeys(cams, cfg.events)))


def feed(analytics: Analytics, cam: Cam, image: np.ndarray, frames) -> list[Event]:
    """Run the frames through the stage; returns the events they raised."""
    events = []
    for k, results in frames:
        _, info = analytics.process(cam, Frame(image, k, cam.id, k / 10, 0.0), results)
        events += info.events if info is not None else []
    return events


def retained(sub: Subscriber) -> dict[str, bytes]:
    """The last payload per topic."""
    return {t: bytes(p) for t, p, _ in list(sub.messages)}


def configs(sub: Subscriber, node: str | None = None) -> dict[str, dict]:
    out = {}
    for topic, payload in retained(sub).items():
        m = CONFIG_TOPIC.match(topic)
        if m and payload and (node is None or m.group(2) == node):
            out[topic] = json.loads(payload)
    return out


def check_schema(found: dict[str, dict]) -> None:
    """Every config is one Home Assistant accepts: known keys, the required ones, ids unique."""
    ids = [c["unique_id"] for c in found.values()]
    assert len(ids) == len(set(ids)), ids
    for topic, c in found.items():
        m = CONFIG_TOPIC.match(topic)
        assert m is not None, topic
        component = m.group(1)
        assert set(c) <= KEYS[component], (topic, set(c) - KEYS[component])
        assert c["name"] and (component == "image" or c["state_topic"] and c["value_template"].startswith("{{"))
        assert isinstance(c["device"]["identifiers"], list) and c["device"]["identifiers"][0]
        assert set(c["device"]) <= DEVICE_KEYS and c["origin"]["name"] == "yolovino"
        assert c["availability_mode"] in ("all", "any", "latest")
        assert all(a["topic"] and not set(a) - {"topic", "payload_available", "payload_not_available",
                                                 "value_template"} for a in c["availability"])  # fmt: skip
        if component == "sensor":
            assert c["state_class"] in STATE_CLASSES
        elif component == "image":
            assert c["image_topic"] and c["content_type"] == "image/jpeg"
        else:
            assert c["device_class"] == "occupancy" and (c["payload_on"], c["payload_off"]) == ("ON", "OFF")


def render(config: dict, payload: bytes) -> str:
    """The entity's state as Home Assistant computes it from a message on its state topic."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    template = ImmutableSandboxedEnvironment().from_string(config["value_template"])
    return template.render(value_json=json.loads(payload), value=payload.decode()).strip()


def test_discovery_entities_follow_the_counts_and_availability(broker, real_frame, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="yolovino")
    broker.start()
    sub = Subscriber(broker.port, "#", client_id="ha-sub")
    assert sub.subscribed.wait(10)
    mqtt = {"host": "127.0.0.1", "port": broker.port, "discovery": True, "embed_snapshot": True}
    analytics = analytics_for(["door"], {"mqtt": mqtt, "snapshots": str(tmp_path / "snaps")})
    try:
        feed(analytics, Cam("door"), real_frame, crossing_frames())
        node = "yolovino_yolo_door"
        want = {f"{node}/{o}" for o in ("tracks_active", "gate_in_crossings", "gate_out_crossings", "last_event")}
        assert wait_until(lambda: len(configs(sub)) == 7, 10), sorted(configs(sub))
        found = configs(sub)
        check_schema(found)
        objects = {"/".join(t.split("/")[2:4]) for t in found}
        zone = next(o.split("/")[1][: -len("_occupied")] for o in objects if o.endswith("_occupied"))
        assert zone.startswith("loading_bay_")  # slug + hash of the name
        assert objects == want | {f"{node}/{zone}_{s}" for s in ("occupied", "all_count", "person_count")}
        late = Subscriber(broker.port, "homeassistant/#", client_id="ha-late")  # Home Assistant starting later
        assert wait_until(lambda: configs(late) == found, 10)  # the configs are retained
        assert all(r for _, _, r in late.messages)
        late.close()
        assert {tuple(c["device"]["identifiers"]) for c in found.values()} == {(node,)}  # one device
        # every state topic received values, and each template reads the truth from them
        state = retained(sub)
        states = {t.split("/")[3]: render(c, state[c["state_topic"]]) for t, c in found.items() if "state_topic" in c}
        counts = json.loads(state["yolo/door/counts"])
        assert counts["zones"][ZONE]["occupancy"] == {"person": 1} and counts["lines"]["gate"]["out"] == {"person": 1}
        assert states[f"{zone}_occupied"] == "ON" and states[f"{zone}_person_count"] == "1"
        assert states[f"{zone}_all_count"] == "1" and states["tracks_active"] == "1"
        assert (states["gate_out_crossings"], states["gate_in_crossings"]) == ("1", "0")
        # the events carry their snapshot, embedded as a JPEG of the frame
        crossed = next(e for e in sub.events() if e["kind"] == "line_crossed")
        jpeg = base64.b64decode(crossed["snapshot_jpeg"])
        assert jpeg == open(crossed["snapshot"], "rb").read()
        assert cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR).shape == (400, 800, 3)
        # the image entity shows the last event's snapshot: its JPEG bytes, retained on its image topic
        image = found[f"homeassistant/image/{node}/last_event/config"]
        last = [e["snapshot"] for e in sub.events() if "snapshot" in e][-1]
        assert wait_until(lambda: retained(sub).get(image["image_topic"]) == open(last, "rb").read(), 10)
        assert state["yolo/door/availability"] == b"online" and state["yolo/status"] == b"online"
        for c in found.values():
            assert {a["topic"] for a in c["availability"]} == {"yolo/status", "yolo/door/availability"}
    finally:
        analytics.close()
    # a clean shutdown: the camera and the app offline (retained), after having been online
    assert wait_until(lambda: retained(sub).get("yolo/door/availability") == b"offline", 10)
    assert wait_until(lambda: retained(sub).get("yolo/status") == b"offline", 10)
    avail = [p for t, p, _ in sub.messages if t == "yolo/door/availability"]
    # online (again on the first connect when the camera was announced before paho was connected), then offline
    assert avail[-1] == b"offline" and avail[:-1] and set(avail[:-1]) == {b"online"}, avail
    assert not caplog.records, caplog.text  # a clean shutdown logs no warning
    sub.close()


def test_removed_camera_and_zone_remove_their_entities(broker, real_frame):
    broker.start()
    sub = Subscriber(broker.port, "homeassistant/#", client_id="ha-sub")
    assert sub.subscribed.wait(10)
    mqtt = {"host": "127.0.0.1", "port": broker.port, "topic": "site", "discovery": True}
    analytics = analytics_for(["door", "yard"], {"mqtt": mqtt})
    door, yard = "yolovino_site_door", "yolovino_site_yard"
    try:
        for cam in ("door", "yard"):
            feed(analytics, Cam(cam), real_frame, crossing_frames())
        assert wait_until(lambda: len(configs(sub, door)) == 6 and len(configs(sub, yard)) == 6, 10)
        yard_topics = set(configs(sub, yard))
        # the yard camera leaves the config (what the supervisor does on a live reload)
        analytics.configure("yard", None)
        analytics.hub.remove_source("yard")
        assert wait_until(lambda: not configs(sub, yard), 10), sorted(configs(sub, yard))
        assert all(retained(sub)[t] == b"" for t in yard_topics) and len(configs(sub, door)) == 6
        # the door's zone is replaced in the editor: its entities go, the new zone's come, the line's stay
        new = ZoneSpec(name="porch", points=((0.0, 0.0), (0.4, 0.0), (0.4, 1.0), (0.0, 1.0)))
        analytics.set_geometry((new,), analytics.config_for("door").lines, source_id="door")
        feed(analytics, Cam("door"), real_frame, crossing_frames(frames=2))
        objects = lambda: {t.split("/")[3] for t in configs(sub, door)}  # noqa: E731
        assert wait_until(lambda: "porch_occupied" in objects(), 10), objects()
        assert not any(o.startswith("loading_bay") for o in objects())
        assert {"gate_in_crossings", "gate_out_crossings", "porch_all_count"} <= objects()
        # a late subscriber (Home Assistant starting) gets only what exists: the broker kept no removed config
        late = Subscriber(broker.port, "homeassistant/#", client_id="ha-late")
        assert wait_until(lambda: configs(late, door) == configs(sub, door), 10)
        assert not configs(late, yard)
        # Home Assistant restarts (its birth message): every entity is announced again
        sent = lambda: sum(t.endswith("/config") for t, _, _ in list(sub.messages))  # noqa: E731
        before = sent()
        late.client.publish("homeassistant/status", "online", qos=1)
        assert wait_until(lambda: sent() == before + len(configs(sub, door)), 10), (before, sent())
        late.close()
        # the broker restarts having lost its retained messages: the app announces again when it reconnects
        broker.stop()
        for db in broker.dir.glob("*.db"):
            db.unlink()
        broker.start()
        fresh = Subscriber(broker.port, "#", client_id="ha-fresh")
        assert wait_until(lambda: configs(fresh, door) == configs(sub, door), 30), sorted(configs(fresh))
        assert wait_until(lambda: retained(fresh).get("site/door/availability") == b"online", 10)
        assert not configs(fresh, yard)
        # a reload keeps the door camera but no longer sends its events to MQTT: its entities go too
        analytics.hub.add_source("door", parse_analytics({"events": {"jsonl": None}}).events)
        assert wait_until(lambda: not configs(fresh, door), 10), sorted(configs(fresh, door))
        fresh.close()
    finally:
        analytics.close()
        sub.close()


def test_clip_ready_and_embedded_snapshots_over_the_webhook_and_mqtt(broker, real_frame, tmp_path):
    """The follow-up of a complete clip (called as the clip writer's plumbing does, on each consumer's
    worker thread) on both transports; a snapshot too large to embed is named, not embedded."""
    broker.start()
    sub = Subscriber(broker.port, "yolo/#", client_id="clip-sub")
    assert sub.subscribed.wait(10)
    hook = Hook()
    events = {
        "mqtt": {"host": "127.0.0.1", "port": broker.port, "embed_snapshot": True, "embed_max_kb": 1},
        "webhook": {"url": hook.url, "embed_snapshot": True},
        "snapshots": {"dir": str(tmp_path / "snaps"), "kinds": ["line_crossed"]},
    }
    analytics = analytics_for(["door"], events)
    clip = require_asset("videos/car-detection.mp4")  # a complete mp4, standing in for the clip writer's
    try:
        crossed = [e for e in feed(analytics, Cam("door"), real_frame, crossing_frames()) if e.line]
        assert wait_until(lambda: any(b.get("kind") == "line_crossed" for b in hook.bodies), 10), hook.bodies
        posted = next(b for b in hook.bodies if b["kind"] == "line_crossed")
        jpeg = base64.b64decode(posted["snapshot_jpeg"])
        assert cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR).shape == (400, 800, 3)
        assert wait_until(lambda: sub.events("line_crossed"), 10)
        published = sub.events("line_crossed")[0]
        assert published["snapshot"] == posted["snapshot"] and "snapshot_jpeg" not in published
        assert published["snapshot_embed_error"] == f"too large ({len(jpeg) // 1024} KiB > 1 KiB)"
        # the clip is complete: each consumer's clip_ready, on its worker thread
        assert len(crossed) == 1
        for consumer in analytics.hub.consumers.values():
            assert consumer.call("clip_ready", "door", str(clip), crossed)
        clips = lambda: [json.loads(p) for t, p, _ in list(sub.messages) if t == "yolo/door/clips"]  # noqa: E731
        assert wait_until(lambda: clips() and any(b.get("type") == "clip_ready" for b in hook.bodies), 10)
        for message in (clips()[0], next(b for b in hook.bodies if b.get("type") == "clip_ready")):
            assert message["type"] == "clip_ready" and message["source"] == "door" and message["clip"] == str(clip)
            assert message["bytes"] == clip.stat().st_size
            assert [(e["kind"], e["line"], e["snapshot"]) for e in message["events"]] == [
                ("line_crossed", "gate", posted["snapshot"])
            ]
    finally:
        analytics.close()
        hook.close()
        sub.close()


def test_a_reload_that_removes_a_camera_removes_its_device(broker, detect_ir, person_clip):
    """The supervisor's live reload (what SIGHUP applies) on a real model and clip: the removed camera's
    entities are deleted, the kept camera's stay and go offline at the clean shutdown."""
    from yolovino.inference.core.config import InferenceConfig
    from yolovino.inference.service.metrics import Metrics
    from yolovino.inference.service.supervisor import Outputs, SourcePlan, Supervisor

    broker.start()
    sub = Subscriber(broker.port, "#", client_id="ha-sub")
    assert sub.subscribed.wait(10)
    raw = {
        "zones": [{"name": "floor", "points": [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]}],
        "lines": [{"name": "middle", "points": [[0.5, 0.0], [0.5, 1.0]]}],
        "events": {"mqtt": {"host": "127.0.0.1", "port": broker.port, "discovery": True}},
    }
    cfg = parse_analytics(raw)
    plans = [
        SourcePlan(c, str(person_clip), c, False, detect_ir, InferenceConfig(), analytics=cfg) for c in ("door", "yard")
    ]
    sup = Supervisor(Metrics(), Outputs(), lambda fr: None)
    door, yard = "yolovino_yolo_door", "yolovino_yolo_yard"
    try:
        sup.apply(plans, strict=True)
        occupied = lambda node: f"homeassistant/binary_sensor/{node}/floor_occupied/config" in configs(sub, node)  # noqa: E731
        assert wait_until(lambda: occupied(door) and occupied(yard), 120), sorted(configs(sub))
        yard_topics = set(configs(sub, yard))
        assert sup.apply(plans[:1])["removed"] == ["yard"]
        assert wait_until(lambda: not configs(sub, yard), 10), sorted(configs(sub, yard))
        assert all(retained(sub)[t] == b"" for t in yard_topics) and occupied(door)
        assert retained(sub)["yolo/yard/availability"] == b""  # the removed camera's retained state is cleared
    finally:
        sup.close()
    assert wait_until(lambda: retained(sub).get("yolo/door/availability") == b"offline", 10)
    assert configs(sub, door)  # kept: unavailable until the app runs again
    sub.close()
