"""JSON has no NaN or Infinity: every document that leaves the process goes through :func:`finite`.

A non-finite number is unknown, so it becomes null (never 0). Shared by every stage that writes JSON
(the log, the API, incident memory, the MCP server), as ``models`` is: it imports nothing of them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any


def finite(obj: Any) -> Any:
    """A copy of ``obj`` with every non-finite float replaced by None; mappings become dicts with
    string keys and tuples become lists, as JSON would have them."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Mapping):
        return {k if isinstance(k, str) else str(k): finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite(v) for v in obj]
    return obj


def compact(obj: Any) -> str:
    """Compact JSON for storage; a non-finite number is stored as null (unknown). Anything that is not
    JSON (a set, an object) is a TypeError, never a silent string."""
    try:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=_refuse, allow_nan=False)
    except ValueError:  # the rare document with a NaN pays for the walk, the rest do not
        return json.dumps(finite(obj), ensure_ascii=False, separators=(",", ":"), default=_refuse)


def _refuse(obj: Any) -> Any:
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")
