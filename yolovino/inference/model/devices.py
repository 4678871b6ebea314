"""Which OpenVINO device runs the model: checked against the devices this machine has, before compiling.

A device spec is what OpenVINO's `compile_model` takes: a plugin (`CPU`, `GPU`, `NPU`), one of several
of a kind (`GPU.1`), or a virtual device over a list (`AUTO`, `AUTO:GPU,CPU`, `MULTI:GPU,CPU`,
`HETERO:GPU,CPU`, `BATCH:GPU(4)`). A spec naming a device that is not present fails here with one line
that lists the devices that are, instead of an OpenVINO exception at the first frame. AUTO needs only
one of its candidates to be present (it chooses at run time); MULTI, HETERO and BATCH need all of them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from yolovino.inference.core.errors import InferenceError

VIRTUAL = ("AUTO", "MULTI", "HETERO", "BATCH")
_NAME = re.compile(r"^[A-Z]+(\.\d+)?$")


class DeviceError(InferenceError):
    """A device spec that cannot work on this machine."""


def check_device(spec: str, available: list[str]) -> str:
    """The normalised spec (upper case, no spaces) if every device it names is in `available`."""
    text = re.sub(r"\s+", "", str(spec or "")).upper()
    present = ", ".join(available) or "none"
    if not text:
        raise DeviceError(f"empty device; devices present: {present}")
    head, sep, rest = text.partition(":")
    if head in VIRTUAL:
        if head == "AUTO" and not sep:
            return text  # AUTO over whatever is present
        members = [re.sub(r"\(\d+\)$", "", m) for m in rest.split(",") if m]
        if not members:
            raise DeviceError(f"device {spec!r}: {head} needs a device list, e.g. {head}:GPU,CPU")
    elif sep:
        raise DeviceError(f"device {spec!r}: unknown virtual device {head!r} (use one of {', '.join(VIRTUAL)})")
    else:
        members = [text]
    missing = []
    for name in members:
        if not _NAME.match(name):
            raise DeviceError(f"device {spec!r}: {name!r} is not a device name; devices present: {present}")
        if not any(a == name or a.split(".")[0] == name for a in available):
            missing.append(name)
    # AUTO picks among its candidates at run time, so one present is enough; the others need every one
    if missing and (head != "AUTO" or len(missing) == len(members)):
        raise DeviceError(f"device {missing[0]} is not available here; devices present: {present}")
    return text


def available_devices() -> list[str]:
    """The devices OpenVINO sees. Ask at most once per process, before anything else starts: once GStreamer's
    RTSP server runs in the process, loading OpenVINO's NPU plugin (which listing the devices does) crashes
    it, so a live reload reuses the list asked at start."""
    import openvino as ov

    return list(ov.Core().available_devices)


def resolve_device(spec: str, devices: list[str] | None) -> tuple[str, list[str] | None]:
    """The checked device spec and OpenVINO's device list (asked now if `devices` is None and needed):
    CPU is always there and needs no listing. DeviceError (one line) if the spec cannot work here."""
    if str(spec).strip().upper() == "CPU":
        return str(spec).strip(), devices
    present = available_devices() if devices is None else devices
    return check_device(str(spec), present), present


def default_cache_dir() -> Path:
    """Where compiled models are cached: $YOLO_APP_CACHE, else the user's cache folder (XDG)."""
    env = os.environ.get("YOLO_APP_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "yolo-app" / "openvino"
