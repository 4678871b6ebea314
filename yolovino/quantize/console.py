"""What the quantize commands share with the terminal: progress lines, quieter libraries, the Ctrl-C flag.

The flag exists because torch tracing, OpenVINO conversion and NNCF's progress bars sometimes catch a
KeyboardInterrupt (or re-raise it as another type): the SIGINT handler remembers it, the build re-raises it
between steps, and the CLI reports any error that follows as the interruption.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import warnings


class _Interrupt:
    """Set by the SIGINT handler that `install` puts in place; one per process (this module is imported once)."""

    seen = False


def log(msg: str) -> None:
    print(f"[quantize] {msg}", file=sys.stderr, flush=True)


def quiet_ultralytics() -> None:
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_VERBOSE", "False")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning)
    for name in ("ultralytics", "nncf"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _on_sigint(signum, frame) -> None:
    _Interrupt.seen = True
    raise KeyboardInterrupt


def install_interrupt_handler() -> None:
    """Remember Ctrl-C (unless someone else already handles SIGINT)."""
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _on_sigint)


def interrupted() -> bool:
    return _Interrupt.seen


def raise_if_interrupted() -> None:
    """Re-raise a Ctrl-C that a library swallowed."""
    if _Interrupt.seen:
        raise KeyboardInterrupt
