"""Benchmarks: each prints a table and writes bench/results/<name>.json; run from the repository root
as `.venv/bin/python -m bench.<name>` (see bench/README.md)."""
