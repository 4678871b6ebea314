"""Class names or ids, as people write them (`classes: [person, 2]`, `--classes person,car`), -> the model's ids.

The one lookup for every place that takes classes: the command line, a source's `classes:`, zones and lines.
Names match case-insensitively; an id must be one of the model's (when its names are known), so a typo such
as `--classes 99999` is refused instead of silently filtering everything out.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from yolovino.inference.core.errors import ConfigError

ClassesInput = list[int | str] | int | str | None  # what `classes:` may be written as


def class_list(value: Any) -> tuple[str, ...] | None:
    """`classes:` as YAML gives it (one name or id, or a list of them) -> a tuple of strings (ValueError if not)."""
    if value is None:
        return None
    items = value if isinstance(value, (list, tuple)) else [value]
    if not items:
        raise ValueError("expected a list of class names or ids")
    out = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (int, str)) or not str(item).strip():
            raise ValueError(f"class ids or names expected, got {item!r}")
        if isinstance(item, int) and item < 0:
            raise ValueError(f"class ids are >= 0, got {item}")
        out.append(str(item).strip())
    return tuple(out)


def class_ids(items: Iterable[int | str] | None, names: dict[int, str], where: str) -> tuple[int, ...] | None:
    """The ids of `items` (None = every class); ConfigError naming `where` (a key path, or a flag) on an unknown
    one. With no names known (a model not loaded yet) ids pass unchecked and names are refused."""
    if items is None:
        return None
    by_name = {n.lower(): i for i, n in names.items()}
    out = []
    for j, item in enumerate(items):
        text = str(item).strip()
        if text.isdigit() and (not names or int(text) in names):
            out.append(int(text))
        elif text.lower() in by_name:
            out.append(by_name[text.lower()])
        else:
            at = where if where.startswith("--") else f"{where}[{j}]"
            known = ", ".join(list(names.values())[:12]) + (", ..." if len(names) > 12 else "")
            raise ConfigError(
                f"{at}: unknown class {item!r} for this model" + (f" (classes: {known})" if names else "")
            )
    return tuple(out)
