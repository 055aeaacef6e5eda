"""Engine dialects (vLLM V0/V1, SGLang old/new, DCGM) -> canonical signals per target and model.

``KEEP`` goes to the exposition parser so it materialises only the samples some dialect reads (it
never keeps ``*_created``); ``identify`` names the engine from the names present; a
``TargetNormaliser`` per target turns pages into :class:`~inferguard.models.Signals`, with window
rates and quantiles from the previous scrape.
"""

from __future__ import annotations

from collections.abc import Callable

from inferguard.normalise.identify import identify
from inferguard.normalise.target import DIALECTS, ENGINE_HINTS, START_TIME, Normalised, TargetNormaliser

__all__ = ["ENGINE_HINTS", "KEEP", "KEEP_NAMES", "Normalised", "TargetNormaliser", "identify"]

KEEP_NAMES: frozenset[str] = frozenset(
    {START_TIME}.union(*(d.sample_names() for d in DIALECTS.values()))
)
KEEP: Callable[[str], bool] = KEEP_NAMES.__contains__
