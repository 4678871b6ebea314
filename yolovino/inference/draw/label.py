"""The one label renderer of every drawing: text on a filled box, measured and placed by the caller.

Box tags (annotate.py), zone/line names and live counts (scene.py) and the fps/latency overlay all draw a
label the same way: measure the text, fill a rectangle a few pixels larger, write the text inside. What
differs is only the padding and the fill's edge, named by a `LabelStyle`, and where the caller puts it
(`label_size` tells it how much room the label takes).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX

BGR = tuple[int, int, int]


@dataclass(frozen=True)
class LabelStyle:
    """Padding around the text in pixels (left, top, right, bottom) and the line type of the fill's edge."""

    pad: tuple[int, int, int, int]
    fill_line: int = cv2.LINE_8


BOX_TAG = LabelStyle((1, 0, 1, 0), cv2.LINE_AA)  # "person 0.87" on a box, in the class colour
CAPTION = LabelStyle((2, 2, 2, 1))  # zone and line names, counts: coloured text on black
OVERLAY = LabelStyle((3, 2, 3, 2))  # fps / latency lines in the top-left corner


def text_size(text: str, fs: float, thickness: int) -> tuple[int, int, int]:
    """(width, height above the baseline, depth below it) of the bare text, in pixels."""
    (tw, th), base = cv2.getTextSize(text, FONT, fs, thickness)
    return tw, th, base


def label_size(text: str, fs: float, thickness: int, style: LabelStyle) -> tuple[int, int]:
    """(width, height) in pixels of the label `draw_label` draws for `text`."""
    tw, th, base = text_size(text, fs, thickness)
    left, top, right, bottom = style.pad
    return tw + left + right, th + base + top + bottom


def draw_label(
    img: np.ndarray,
    text: str,
    top_left: tuple[int, int],
    fs: float,
    thickness: int,
    fg: BGR,
    bg: BGR,
    style: LabelStyle,
) -> None:
    """Draw `text` in colour `fg` on a `bg` rectangle whose top-left corner is `top_left` (in place)."""
    tw, th, base = text_size(text, fs, thickness)
    left, top, right, bottom = style.pad
    x, y = top_left
    cv2.rectangle(img, (x, y), (x + tw + left + right, y + th + base + top + bottom), bg, -1, style.fill_line)
    cv2.putText(img, text, (x + left, y + top + th), FONT, fs, fg, thickness, cv2.LINE_AA)


def readable_on(bg: BGR) -> BGR:
    """Black text on a light fill, white on a dark one."""
    return (0, 0, 0) if sum(bg) > 3 * 150 else (255, 255, 255)
