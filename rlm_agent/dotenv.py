"""A ``.env`` file for ``rlm-agent``, read the way ``inferguard`` reads its own (pydantic-settings):
``NAME=value`` lines, ``#`` comments, an optional ``export`` prefix and quotes; a variable already in
the environment wins over the file. rlm_agent cannot import inferguard's settings, hence this reader.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from .errors import SettingsInvalid

_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")
MAX_BYTES = 1 << 20  # a settings file, not a data file


def read_env_file(path: Path) -> dict[str, str]:
    """The ``NAME=value`` pairs of ``path``; a clear :class:`SettingsInvalid` naming the file if unreadable."""
    try:
        raw = path.read_bytes()[: MAX_BYTES + 1]
    except OSError as exc:
        raise SettingsInvalid(str(path), f"cannot read: {exc.strerror or type(exc).__name__}") from None
    if len(raw) > MAX_BYTES:
        raise SettingsInvalid(str(path), f"larger than {MAX_BYTES} bytes: not a settings file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SettingsInvalid(str(path), f"not UTF-8 (invalid byte at offset {exc.start})") from None
    out: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = _LINE.match(line)
        if m is None:
            raise SettingsInvalid(f"{path}:{number}", "expected NAME=value")
        name, value = m.group(1), m.group(2)
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()  # an inline comment after an unquoted value
        out[name] = value
    return out


def environment(env: Mapping[str, str], env_file: Path | None, *, required: bool) -> tuple[dict[str, str], str]:
    """``env`` over the file's values, and where settings were read from (for the start-up line)."""
    if env_file is None or (not required and not env_file.is_file()):
        return dict(env), "the environment"
    return {**read_env_file(env_file), **env}, f"the environment and {env_file}"
