"""The app on a Ray cluster: live cameras spread over many boxes, and batches of video files.

An optional extra (`pip install yolovino[fleet]`: Ray); the single-box app (`inference/`, `app.py`) imports
nothing of it. Each node runs the same per-node pipeline as the headless mode (inference/service/supervisor.py),
so models, thresholds, outputs and events are the single-box ones.

    yolovino-fleet live   --address HEAD:6379 --config cams.yaml     # cameras across the nodes
    yolovino-fleet status --address HEAD:6379                        # per camera: node, state, FPS, ...
    yolovino-fleet batch  --address HEAD:6379 --out results/ videos/ # files as Ray tasks, resumable
    yolovino-fleet ray start --head ...                              # Ray's CLI, loopback kept (tests)
"""
