"""Sources on this machine read with OpenCV: a webcam by index, one image or a folder of images."""

from __future__ import annotations

import logging
from pathlib import Path

from yolovino.inference.core.errors import SourceError
from yolovino.inference.core.redact import safe_name
from yolovino.inference.sources.base import Source

log = logging.getLogger(__name__)


class WebcamSource(Source):
    """A local camera by index, read with OpenCV.

    A camera that stops sending makes OpenCV's V4L2 backend return a failed read after its select()
    timeout (10 s by default; the OPENCV_VIDEOIO_V4L_SELECT_TIMEOUT environment variable, in seconds,
    changes it), which counts as an outage and starts the reconnect loop.
    """

    kind = "webcam"
    reconnectable = True

    def __init__(self, spec: str, *, index: int, **kw):
        super().__init__(spec, live=kw.pop("live", True), **kw)
        self.index_ = index

    def _open(self):
        import cv2

        cap = cv2.VideoCapture(self.index_)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"webcam {self.index_}: cannot open")
        return cap

    def _frames(self, cap):
        while True:
            ok, image = cap.read()
            if not ok or image is None:
                raise SourceError(f"webcam {self.index_}: read failed")
            yield image, None

    def _close_handle(self, cap) -> None:
        cap.release()


class ImageSource(Source):
    """One image file, or every image in a folder (sorted by name)."""

    kind = "images"

    def __init__(self, spec: str, *, paths: list[Path], **kw):
        kw.pop("live", None)
        super().__init__(spec, live=False, **kw)
        self.paths = paths

    def _open(self):
        import cv2

        if not self.paths:
            raise SourceError(f"{self.display}: no images found")
        first = cv2.imread(str(self.paths[0]), cv2.IMREAD_COLOR)
        if first is None:
            raise SourceError(f"{self.display}: {safe_name(self.paths[0].name)} is not a readable image")
        return first

    def _frames(self, first):
        import cv2

        yield first, None
        for path in self.paths[1:]:
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                log.warning("%s: skipping unreadable image %s", self.display, safe_name(path.name))
                continue
            yield image, None
