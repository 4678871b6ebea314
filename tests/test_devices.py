"""Device choice: specs checked against the devices present, one clear line when one is missing.

Only a CPU exists on the machines this runs on, so the GPU/NPU paths are exercised through the selection
logic with a given device list, and for real through the CLI, where they must be refused.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import openvino as ov
import pytest

from yolovino.inference.core.config import InferenceConfig
from yolovino.inference.model.devices import DeviceError, check_device
from yolovino.inference.model.ir import YoloModel

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "spec, available, want",
    [
        ("cpu", ["CPU"], "CPU"),
        ("AUTO", ["CPU"], "AUTO"),
        ("AUTO:GPU,CPU", ["CPU"], "AUTO:GPU,CPU"),  # AUTO chooses among what is there
        ("MULTI:GPU,CPU", ["CPU", "GPU"], "MULTI:GPU,CPU"),
        ("HETERO:GPU,CPU", ["CPU", "GPU.0", "GPU.1"], "HETERO:GPU,CPU"),
        ("GPU.1", ["CPU", "GPU.0", "GPU.1"], "GPU.1"),
        ("BATCH:GPU(4)", ["CPU", "GPU"], "BATCH:GPU(4)"),
        (" npu ", ["CPU", "NPU"], "NPU"),
    ],
)
def test_present_devices_are_accepted(spec, available, want):
    assert check_device(spec, available) == want


@pytest.mark.parametrize(
    "spec, available, needle",
    [
        ("GPU", ["CPU"], "device GPU is not available here; devices present: CPU"),
        ("GPU.2", ["CPU", "GPU.0", "GPU.1"], "device GPU.2 is not available"),
        ("MULTI:GPU,CPU", ["CPU"], "device GPU is not available"),
        ("AUTO:GPU,NPU", ["CPU"], "device GPU is not available"),
        ("MULTI", ["CPU"], "needs a device list"),
        ("FAST:CPU", ["CPU"], "unknown virtual device"),
        ("", ["CPU"], "empty device"),
        ("CPU;rm", ["CPU"], "not a device name"),
    ],
)
def test_absent_or_malformed_devices_are_refused_in_one_line(spec, available, needle):
    with pytest.raises(DeviceError) as info:
        check_device(spec, available)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_model_load_checks_the_device_against_this_machine(detect_ir):
    present = ov.Core().available_devices
    assert "CPU" in present
    model = YoloModel.load(detect_ir, InferenceConfig(device="auto"))
    assert model.config.device == "AUTO"
    if "GPU" not in present:
        with pytest.raises(DeviceError, match="devices present: .*CPU"):
            YoloModel.load(detect_ir, InferenceConfig(device="GPU"))


def test_cli_absent_device_is_one_line_exit_2(detect_ir):
    if any(d.startswith("NPU") for d in ov.Core().available_devices):
        pytest.skip("this machine has an NPU")
    proc = subprocess.run(
        [sys.executable, "app.py", "--headless", "--source", "x.mp4", "--model", str(detect_ir), "--device", "NPU"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "device NPU is not available here; devices present: CPU" in lines[0], proc.stderr
    print(lines[0])
