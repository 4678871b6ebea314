"""Configuration errors as one line naming the key path: what every pydantic model of the config tree raises.

    sources[1].analytics.zones[0].points[2]: (1.5, 0.2) is out of the frame ...

pydantic reports every problem with its location; `describe` turns them into the project's one-line form
(`where: path: message, got X; ...`, at most five), lists the allowed keys of a mapping that has an unknown
one, and never prints a big value whole (a YAML alias bomb expands to megabytes: the value shown is cut) nor a URL's
credentials (`redact`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from yolovino.inference.core.redact import scrub

SHOWN = 60  # characters of an offending value shown in a message


def short(value: Any, limit: int = SHOWN) -> str:
    """repr(value) cut to `limit` characters (a huge or deeply nested value is never rendered whole)."""
    if isinstance(value, (dict, list, tuple, set)) and len(value) > 8:
        return f"<{type(value).__name__} of {len(value)} items>"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def key_path(loc: tuple) -> str:
    """('sources', 1, 'conf') -> 'sources[1].conf'."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _model_at(root: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """The model class that holds the key at `loc` (to list its allowed keys)."""
    model: Any = root
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return None
        nested: list[Any] = []
        todo = [field.annotation]
        while todo:  # Optional[...], tuple[X, ...], Annotated[...]: look through the type's arguments
            ann = todo.pop()
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                nested.append(ann)
            todo.extend(getattr(ann, "__args__", ()))
        model = nested[0] if nested else None
    return model


def join(prefix: str, path: str) -> str:
    """A key path below a prefix: ('sources[1].analytics', 'zones[0]') -> 'sources[1].analytics.zones[0]'."""
    if not prefix or not path:
        return prefix or path
    return prefix + path if path.startswith("[") else f"{prefix}.{path}"


def _message(err: Any, root: type[BaseModel], prefix: str) -> str:
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    path = join(prefix, key_path(loc))
    if err["type"] == "extra_forbidden":
        model = _model_at(root, loc)
        keys = [k for k, f in model.model_fields.items() if not f.exclude] if model else []
        allowed = f" (allowed: {', '.join(keys)})" if keys else ""
        return f"{path}: unknown key{allowed}"
    msg = str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    got = err.get("input")
    shown = "" if isinstance(got, (dict, list, tuple)) or err["type"] == "missing" else f", got {short(got)}"
    return f"{path}: {msg}{shown}" if path else f"{msg}{shown}"


def describe(exc: ValidationError, root: type[BaseModel], prefix: str = "") -> str:
    """Every problem of `exc` in one line (at most five), each named by its key path below `prefix`."""
    problems = [_message(e, root, prefix) for e in exc.errors()]
    return scrub("; ".join(problems[:5]) + ("; ..." if len(problems) > 5 else ""))  # a bad URL shows no password
