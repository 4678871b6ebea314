"""yolovino: real-time video analytics with INT8 YOLO models on the CPU, with OpenVINO.

Subpackages, in the direction imports point (each only imports those below it or beside it):
    yolovino.app        the `yolovino` command: Gradio UI or --headless
    yolovino.ui         the Gradio page (extra `ui`)
    yolovino.fleet      cameras and batches on a Ray cluster (extra `fleet`)
    yolovino.quantize   .pt -> FP32 / INT8 IR, validation (extra `quantize`; torch, Ultralytics, NNCF)
    yolovino.inference  the runtime: sources, engine, tasks, analytics, sinks (default install, no torch)
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("yolovino")
except PackageNotFoundError:  # a checkout used without installing it
    __version__ = "0+unknown"
