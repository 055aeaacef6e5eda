"""The probe from settings (called by the composition root)."""

from __future__ import annotations

from inferguard.config import ProbeSettings
from inferguard.probes.canary import DaytonaProbe, LocalProbe


def build_probe(s: ProbeSettings, *, model: str | None = None) -> LocalProbe | DaytonaProbe:
    """A Daytona probe when DAYTONA_API_KEY is set, else a local one."""
    local = LocalProbe(model=model or s.model, max_tokens=s.max_tokens, timeout_s=s.timeout_seconds)
    if s.daytona_api_key is not None:
        return DaytonaProbe(s.daytona_api_key.get_secret_value(), local)
    return local
