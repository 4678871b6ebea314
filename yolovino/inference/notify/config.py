"""The `events:` block of a source's analytics: which consumers get its events, each with its own config class.

    events:
      jsonl: events.jsonl
      mqtt: {host: 127.0.0.1, port: 1883, topic: yolo}          # topics yolo/<source>/events, .../counts
           # + discovery: true (Home Assistant entities, notify/discovery.py), embed_snapshot: true (base64 JPEG)
      webhook: {url: "http://127.0.0.1:8080/hook", timeout_s: 2, retries: 3}   # or just the URL
      snapshots: {dir: snapshots, kinds: [line_crossed, zone_entered]}        # or just the folder
      db: {path: events.db, max_age_days: 30, max_mb: 2000}      # SQLite event store, or just the file
      kinds: [line_crossed, zone_entered]                        # which events are sent at all
      clips: {dir: clips, pre_s: 5, post_s: 5, kinds: [line_crossed], classes: [car], annotated: false}
      queue_size: 1000                                           # per consumer

A consumer kind is one field here and one class registered in notify/base.py's CONSUMERS (CONTRIBUTING.md).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    Strict,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from yolovino.inference.core.events import EventKind
from yolovino.inference.core.validation import describe
from yolovino.inference.notify.base import CONSUMERS

Text = Annotated[str, Strict(), StringConstraints(strip_whitespace=True, min_length=1)]
Int = Annotated[int, Strict()]
Num = Annotated[float, Strict()]


def _bare(key: str):
    """A bare string stands for {key: string} (`webhook: http://...`, `snapshots: folder`)."""
    return lambda value: {key: value} if isinstance(value, str) else value


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class MqttOutput(_Config):
    host: Text
    port: Int = Field(default=1883, ge=1, le=65535)
    topic: Text = "yolo"  # events go to <topic>/<source>/events, retained counts to <topic>/<source>/counts
    qos: Int = Field(default=1, ge=0, le=2)
    client_id: Text | None = None
    username: Text | None = None
    password_env: Text | None = None  # name of the environment variable holding the password (never the YAML)
    keepalive: Int = Field(default=30, ge=1, le=10**7)
    max_queue: Int = Field(default=1000, ge=1, le=10**7)  # messages paho keeps while the broker is away
    # the event's snapshot in the message itself (base64 JPEG, notify/payload.py), for consumers without file
    # access; a snapshot larger than embed_max_kb is left out (the message says so and keeps its path)
    embed_snapshot: Annotated[bool, Strict()] = False
    embed_max_kb: Int = Field(default=256, ge=1, le=64 * 1024)
    # Home Assistant MQTT discovery (notify/discovery.py): a device per camera, entities per zone and line
    discovery: Annotated[bool, Strict()] = False
    discovery_prefix: Text = "homeassistant"

    @field_validator("topic", "discovery_prefix")
    @classmethod
    def _no_wildcards(cls, topic: str) -> str:
        if any(c in topic for c in "#+"):
            raise ValueError("wildcards (# +) are for subscribers, not for publishing")
        return topic


class WebhookOutput(_Config):
    url: Text
    timeout_s: Num = Field(default=2.0, ge=0.01, le=600.0)
    retries: Int = Field(default=3, ge=0, le=100)
    backoff_s: Num = Field(default=0.5, ge=0.0, le=600.0)
    max_backoff_s: Num = Field(default=5.0, ge=0.0, le=3600.0)
    embed_snapshot: Annotated[bool, Strict()] = False  # as MqttOutput's
    embed_max_kb: Int = Field(default=256, ge=1, le=64 * 1024)

    @field_validator("url")
    @classmethod
    def _http(cls, url: str) -> str:
        if not url.lower().startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL")
        return url


class SnapshotOutput(_Config):
    dir: Text
    kinds: tuple[EventKind, ...] = (EventKind.CROSSED, EventKind.ENTERED, EventKind.DWELL)
    quality: Int = Field(default=85, ge=1, le=100)


class ClipOutput(_Config):
    """Event clips (outputs/clips.py): for each event of `kinds` (and of `classes`, by label; None = all),
    an mp4 from `pre_s` before it to `post_s` after it, starting on a keyframe; events closer than `post_s`
    share one clip. Copied from the camera's packets for H.264/H.265 sources, encoded from frames for the
    others (webcams, image folders) and when `annotated` (boxes, zones and counts drawn in)."""

    dir: Text
    pre_s: Num = Field(default=5.0, ge=0.0, le=300.0)
    post_s: Num = Field(default=5.0, ge=0.0, le=300.0)
    kinds: tuple[EventKind, ...] = (EventKind.CROSSED, EventKind.ENTERED, EventKind.DWELL)
    classes: tuple[Text, ...] | None = None
    annotated: bool = False


class StoreOutput(_Config):
    """The SQLite event store (notify/store.py): its file, and the retention it applies to its rows and to the
    snapshots and clips they point to (age in days, total megabytes of the database and those files)."""

    path: Text
    max_age_days: Num | None = Field(default=None, gt=0.0, le=36500.0)
    max_mb: Num | None = Field(default=None, gt=0.0, le=10.0**9)


class EventOutputs(_Config):
    jsonl: Text | None = None
    mqtt: MqttOutput | None = None
    webhook: Annotated[
        WebhookOutput | None, BeforeValidator(_bare("url"), json_schema_input_type=WebhookOutput | str | None)
    ] = None  # or just the URL
    snapshots: Annotated[
        SnapshotOutput | None, BeforeValidator(_bare("dir"), json_schema_input_type=SnapshotOutput | str | None)
    ] = None  # or just the folder
    db: Annotated[
        StoreOutput | None, BeforeValidator(_bare("path"), json_schema_input_type=StoreOutput | str | None)
    ] = None  # or just the file
    queue_size: Int = Field(default=1000, ge=1, le=10**6)  # per consumer; beyond it events are dropped and counted
    kinds: tuple[EventKind, ...] = tuple(EventKind)
    clips: Annotated[
        ClipOutput | None, BeforeValidator(_bare("dir"), json_schema_input_type=ClipOutput | str | None)
    ] = None  # or just the folder
    # consumers registered by plug-ins (notify/base.py): key -> its validated config
    _plugins: dict[str, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _registered_kinds(cls, data: Any, handler: Any) -> Any:
        """Keys that are no field but a registered consumer kind are validated by that kind's config type."""
        plugins = {}
        if isinstance(data, dict):
            plugins = {k: v for k, v in data.items() if k not in cls.model_fields and k in CONSUMERS}
            data = {k: v for k, v in data.items() if k not in plugins}
        model = handler(data)
        for key, value in plugins.items():
            try:
                model._plugins[key] = TypeAdapter(CONSUMERS[key].config).validate_python(value)
            except ValidationError as exc:
                raise ValueError(describe(exc, BaseModel, key)) from None
        return model

    def config_of(self, key: str) -> Any:
        """The config of consumer kind `key` (None when this block does not ask for it)."""
        return getattr(self, key) if key in type(self).model_fields else self._plugins.get(key)


__all__ = ["ClipOutput", "EventOutputs", "MqttOutput", "SnapshotOutput", "StoreOutput", "WebhookOutput"]
