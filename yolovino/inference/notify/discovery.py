"""Home Assistant MQTT discovery: each camera a device, its zones and lines entities, fed by our counts.

With `mqtt: {discovery: true, discovery_prefix: homeassistant}` the MQTT consumer (notify/mqtt.py) announces,
retained, one config message per entity under `<prefix>/<component>/<node>/<object>/config` (the topic
scheme of Home Assistant's MQTT discovery; node = `yolovino_<topic>_<camera>`, one per camera and app
namespace `topic`, so two apps on one broker do not collide):

    binary_sensor  <zone>_occupied      ON while anything is inside the zone (device_class occupancy)
    sensor         <zone>_all_count     how many objects are inside the zone now
    sensor         <zone>_<class>_count how many of that class are inside now (one per class seen there)
    sensor         <line>_in_crossings  crossings of the line in each direction since the camera started
    sensor         <line>_out_crossings   (state_class total_increasing: a restart from 0 is a reset)
    sensor         tracks_active        objects tracked on the camera now
    image          last_event           the snapshot of the camera's last event (with `snapshots:` on), its
                                        JPEG's bytes retained on `<topic>/<camera>/snapshot` (at most
                                        `embed_max_kb`, as embedded snapshots)

Every entity reads the camera's retained counts message (`<topic>/<camera>/counts`, the JSON documented in
mqtt.py) with a `value_template`, so no extra state traffic is sent and Home Assistant gets the current
state at once when it subscribes. Each is `available` while both the app (`<topic>/status`, its last
will) and the camera (`<topic>/<camera>/availability`, retained "online"/"offline") are online.

The entities follow the counts: a zone or line that appears (a reload, the UI's editor) is announced with
the first counts message that holds it, a class when it is first counted in a zone, and a zone or line
that is gone from the counts has its entities removed (an empty retained config, Home Assistant's way to
delete an entity). A camera removed from the config (live reload) removes all of its entities; at a clean
shutdown every camera goes "offline". When Home Assistant restarts (its birth message "online" on
`<prefix>/status`) and when we reconnect to the broker (which may have restarted without its retained
messages), every config and camera availability is published again.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version

Publish = Callable[[str, str, bool], None]  # topic, payload, retain


def slug(name: str) -> str:
    """A discovery-topic-safe id ([a-zA-Z0-9_-]); names that had to change get a short hash of the original
    so two names never map to one id ("a b" and "a_b")."""
    out = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_") or "x"
    return out if out == name else f"{out}_{hashlib.sha1(name.encode()).hexdigest()[:6]}"


def _version() -> str:
    try:
        return version("yolovino")
    except PackageNotFoundError:
        return "0+unknown"


def _key(name: str) -> str:
    """A Jinja string literal of `name` (JSON's escaping is one Jinja reads)."""
    return json.dumps(name)


class Discovery:
    """The discovery state of one MQTT consumer: what it announced for each camera (thread-safe: `update`
    runs on the consumer's worker thread, `republish` on paho's when Home Assistant comes back)."""

    def __init__(self, topic: str, prefix: str, publish: Publish):
        self.topic, self.prefix, self.publish = topic, prefix, publish
        self.sw = _version()
        self._configs: dict[str, dict[str, str]] = {}  # camera -> config topic -> payload (announced)
        self._regions: dict[str, dict[str, str]] = {}  # camera -> config topic -> the zone/line it belongs to
        self._lock = threading.Lock()

    # -- what an entity is ---------------------------------------------------------------------------------
    def node(self, source: str) -> str:
        return slug(f"yolovino_{self.topic}_{source}")

    def availability_topic(self, safe: str) -> str:
        """The camera's availability ("online"/"offline", retained); `safe`: its topic-safe name."""
        return f"{self.topic}/{safe}/availability"

    def _entity(self, source: str, safe: str, component: str, obj: str, name: str, extra: dict) -> tuple[str, str]:
        node = self.node(source)
        config = {
            "name": name,
            "unique_id": f"{node}_{obj}",
            **({"state_topic": f"{self.topic}/{safe}/counts"} if component != "image" else {}),
            **extra,
            "availability": [
                {"topic": f"{self.topic}/status", "payload_available": "online", "payload_not_available": "offline"},
                {
                    "topic": self.availability_topic(safe),
                    "payload_available": "online",
                    "payload_not_available": "offline",
                },
            ],
            "availability_mode": "all",
            "device": {
                "identifiers": [node],
                "name": source,
                "manufacturer": "yolovino",
                "model": "camera analytics",
                "sw_version": self.sw,
            },
            "origin": {"name": "yolovino", "sw_version": self.sw},
        }
        topic = f"{self.prefix}/{component}/{node}/{obj}/config"
        return topic, json.dumps(config, separators=(",", ":"), sort_keys=True)

    def entities(self, source: str, safe: str, counts: dict) -> dict[str, tuple[str, str]]:
        """config topic -> (payload, region) of every entity the counts message `counts` implies."""
        out: dict[str, tuple[str, str]] = {}

        def add(region: str, component: str, obj: str, name: str, extra: dict) -> None:
            topic, payload = self._entity(source, safe, component, obj, name, extra)
            out[topic] = (payload, region)

        add("", "sensor", "tracks_active", "Objects tracked", _count("{{ value_json.tracks_active }}"))
        for zone, c in counts.get("zones", {}).items():
            z, inside = slug(zone), f"value_json.zones[{_key(zone)}].occupancy"
            region = f"zone:{zone}"
            occupied = {
                "device_class": "occupancy",
                "value_template": f"{{{{ 'ON' if ({inside}.values() | sum) > 0 else 'OFF' }}}}",
                "payload_on": "ON",
                "payload_off": "OFF",
            }
            add(region, "binary_sensor", f"{z}_occupied", f"{zone} occupied", occupied)
            add(region, "sensor", f"{z}_all_count", f"{zone} objects", _count(f"{{{{ {inside}.values() | sum }}}}"))
            for label in sorted({*c.get("occupancy", {}), *c.get("entries", {}), *c.get("exits", {})}):
                value = f"{{{{ {inside}.get({_key(label)}, 0) }}}}"
                add(region, "sensor", f"{z}_{slug(label)}_count", f"{zone} {label}", _count(value))
        for line in counts.get("lines", {}):
            for direction in ("in", "out"):
                value = f"{{{{ value_json.lines[{_key(line)}][{_key(direction)}].values() | sum }}}}"
                extra = _count(value) | {"state_class": "total_increasing", "icon": "mdi:transit-connection-variant"}
                add(f"line:{line}", "sensor", f"{slug(line)}_{direction}_crossings", f"{line} {direction}", extra)
        return out

    # -- announcing ----------------------------------------------------------------------------------------
    def update(self, source: str, safe: str, counts: dict) -> None:
        """Announce what `counts` shows that is not announced yet; remove the entities of zones and lines no
        longer in it (class sensors of a zone stay while the zone does); the camera online on first sight."""
        with self._lock:
            first = source not in self._configs
            announced = self._configs.setdefault(source, {})
            regions = self._regions.setdefault(source, {})
            wanted = self.entities(source, safe, counts)
            present = {region for _, region in wanted.values()}
            for topic in [t for t, region in regions.items() if region not in present]:
                self.publish(topic, "", True)
                announced.pop(topic, None)
                regions.pop(topic, None)
            for topic, (payload, region) in wanted.items():
                if announced.get(topic) != payload:
                    self.publish(topic, payload, True)
                    announced[topic], regions[topic] = payload, region
            if first:
                self.publish(self.availability_topic(safe), "online", True)

    def snapshot_topic(self, safe: str) -> str:
        """The camera's last event snapshot: the JPEG's bytes, retained (what the `image` entity shows)."""
        return f"{self.topic}/{safe}/snapshot"

    def announce_image(self, source: str, safe: str) -> None:
        """The `image` entity of the camera's last event snapshot, announced with its first snapshot."""
        obj = "last_event"
        extra = {"image_topic": self.snapshot_topic(safe), "content_type": "image/jpeg", "icon": "mdi:cctv"}
        topic, payload = self._entity(source, safe, "image", obj, "Last event", extra)
        with self._lock:
            announced = self._configs.get(source)
            if announced is not None and announced.get(topic) != payload:
                self.publish(topic, payload, True)
                announced[topic] = payload
                self._regions[source][topic] = ""  # camera-wide: goes with the camera only

    def remove(self, source: str, safe: str) -> None:
        """The camera is gone (removed from the config): delete its entities and its retained state."""
        with self._lock:
            announced = self._configs.pop(source, {})
            self._regions.pop(source, None)
            for topic in announced:
                self.publish(topic, "", True)
            if announced:
                self.publish(self.availability_topic(safe), "", True)
                self.publish(self.snapshot_topic(safe), "", True)

    def republish(self, safe_of: Callable[[str], str]) -> None:
        """Every announced config and camera availability again (Home Assistant restarted, or the broker
        came back and may have lost its retained messages)."""
        with self._lock:
            for source, announced in self._configs.items():
                for topic, payload in announced.items():
                    self.publish(topic, payload, True)
                self.publish(self.availability_topic(safe_of(source)), "online", True)

    def offline(self, safe_of: Callable[[str], str]) -> None:
        """Each announced camera "offline" (a clean shutdown: the entities stay, unavailable)."""
        with self._lock:
            for source in self._configs:
                self.publish(self.availability_topic(safe_of(source)), "offline", True)

    def announced(self, source: str) -> dict[str, str]:
        with self._lock:
            return dict(self._configs.get(source, {}))


def _count(template: str) -> dict:
    return {"value_template": template, "state_class": "measurement", "icon": "mdi:counter"}
