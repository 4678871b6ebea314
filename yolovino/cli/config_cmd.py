"""`yolovino config check FILE` and `yolovino config schema`: a camera file checked before it is deployed, and
the JSON Schema that lets editors (the YAML language server) complete and check camera files as people type.

    yolovino config check cams.yaml [--model DIR]   # every error in one line (exit 2), else the effective
                                                    # configuration with every default filled in (exit 0)
    yolovino config schema [-o cams.schema.json]    # then in the YAML: # yaml-language-server: $schema=...

`check` validates the file as `--headless --config` would, then, when a model can be found, plans every source
(class names against its model, devices against this box, outputs' folders) without opening anything.
Secrets are never printed: `${VAR}` stays as written and URLs are redacted.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from yolovino.cli.config import UsageError, build_config


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        raise UsageError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="yolovino config", description="Check a camera file, or write its JSON Schema.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    check = sub.add_parser("check", help="validate FILE and print the effective configuration")
    check.add_argument("file", metavar="FILE")
    check.add_argument("--model", help="model to check class names against (default: the file's, else models/)")
    schema = sub.add_parser("schema", help="the JSON Schema of camera files")
    schema.add_argument("-o", "--output", metavar="FILE", help="write it to FILE instead of standard output")
    return p


def _effective(path: str) -> dict:
    from yolovino.inference.core.redact import redact
    from yolovino.inference.service.settings import load_settings

    data = load_settings(path).model_dump(mode="json")
    for source in data["sources"]:
        for key in ("url", "output"):
            if source.get(key):
                source[key] = redact(source[key])
    return data


def _check(args: argparse.Namespace) -> int:
    import yaml

    from yolovino.inference.core.errors import InferenceError
    from yolovino.inference.service.plan import plan_sources

    data = _effective(args.file)  # the schema: ConfigError naming the key path
    try:
        headless = build_config(
            ["--headless", "--config", args.file, *(["--model", args.model] if args.model else [])]
        ).headless
    except UsageError as exc:
        if "no model given" not in str(exc):
            raise
        print(f"note: {exc}; class names and devices not checked", file=sys.stderr)
    else:
        assert headless is not None
        try:
            plans = plan_sources(headless)
        except InferenceError as exc:
            raise UsageError(str(exc)) from None
        print(f"# {args.file}: valid, {len(plans)} source(s) planned", file=sys.stderr)
    yaml.safe_dump(data, sys.stdout, sort_keys=False, default_flow_style=None, width=120)
    return 0


def _schema(args: argparse.Namespace) -> int:
    from yolovino.inference.core.fileio import write_json
    from yolovino.inference.service.settings import config_schema

    schema = config_schema()
    if args.output:
        write_json(Path(args.output), schema)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        json.dump(schema, sys.stdout, indent=2)
        print()
    return 0


def config_main(argv: list[str]) -> int:
    """Exit 0 when valid (and the output written), 2 with one line on any problem."""
    from yolovino.inference.core.errors import InferenceError

    try:
        args = _parser().parse_args(argv)
        return _check(args) if args.command == "check" else _schema(args)
    except (UsageError, InferenceError, OSError) as exc:
        print(f"yolovino config: error: {exc}", file=sys.stderr)
        return 2
