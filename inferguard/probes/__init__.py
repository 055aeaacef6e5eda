"""Canary probes run by the daemon and `inferguard probe` (the scripts live in canary_scripts/)."""

from inferguard.probes.canary import DaytonaProbe, LocalProbe, api_base

__all__ = ["DaytonaProbe", "LocalProbe", "api_base"]
