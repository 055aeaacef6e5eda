"""The stage protocols plugin authors may implement. One or two verbs each, plus ``aclose``."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from inferguard.models import Scrape, Target


@runtime_checkable
class Source(Protocol):
    """Produces a Scrape for a target; failures are a Scrape with a typed ``error``, never an exception."""

    async def scrape(self, target: Target) -> Scrape: ...

    async def aclose(self) -> None: ...
