"""One reading of a human duration for every command and setting that takes one (``--for``, ``--since``)."""

from __future__ import annotations

import math
import re

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?[smhdw])+")


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``30m``, ``1.5h``, ``1h30m``, ``7d``, ``1w`` → seconds.

    Raises ValueError saying what a duration looks like; the caller names the option it came from.
    """
    t = text.strip().lower()
    if re.fullmatch(r"\d+(?:\.\d+)?", t):
        seconds = float(t)
    elif _WHOLE.fullmatch(t):
        seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(t))
    else:
        raise ValueError(f"{text!r} is not a duration like 90s, 30m, 1.5h, 1h30m or 7d")
    if not math.isfinite(seconds):
        raise ValueError(f"{text!r} is too long a duration")
    return seconds
