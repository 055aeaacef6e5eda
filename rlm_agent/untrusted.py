"""Text we did not write: label values from targets going to the LLM, and the LLM's words coming back.

Both are data. Before they are stored, printed or put in a prompt, terminal escape sequences and every
control or format character (C0, C1, DEL, bidi overrides, zero-width marks) are removed, whitespace is
folded to single spaces (one line, so a log line stays one line) and the length is bounded.
"""

from __future__ import annotations

import re
import unicodedata

# ECMA-48 sequences, removed whole so no parameter bytes are left behind: CSI (ESC [ ... final, or the
# one-byte 0x9b), OSC/DCS/SOS/PM/APC strings (up to BEL or ST), and two-byte ESC sequences.
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]"
)
_SPACE = re.compile(r"\s+")


def _visible(ch: str) -> str:
    return " " if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch


def text(value: object, limit: int) -> str:
    """``value`` as one line of printable text, at most ``limit`` characters (an ellipsis marks a cut)."""
    s = _ESCAPES.sub("", str(value))
    s = _SPACE.sub(" ", "".join(_visible(ch) for ch in s)).strip()
    return s if len(s) <= limit else s[: max(0, limit - 1)].rstrip() + "…"
