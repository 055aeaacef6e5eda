"""Kept for imports of the old module name; the HTTP surface lives in :mod:`inferguard.api`."""

from inferguard.api import Health, build_app

__all__ = ["Health", "build_app"]
