"""`python app.py ...` from a checkout: the same as the `yolovino` command (Gradio UI, or --headless)."""

import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # a checkout not (yet) installed with pip
    from yolovino.app import main

    raise SystemExit(main())
