"""`inferguard replay FILE --notify`: the recorded timeline through the same pipeline, on the recorded
clock, with its incident events going to the notification sink (and the actuator) the settings build."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

from inferguard.actuation import WebhookActuator
from inferguard.brain import rules_advisor
from inferguard.config import Settings
from inferguard.pipeline import Observation, Pipeline
from inferguard.protocols import EventDoc
from inferguard.sources.timeline import read_timeline


class ReplayClock:
    """Time as the timeline tells it: set to each scrape's timestamp as the replay goes."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class TickingSink(Protocol):
    """A notification sink: the Sink protocol plus its clock-driven part."""

    async def send(self, event: EventDoc) -> None: ...

    async def tick(self) -> None: ...


def latest_reader(pipeline: Pipeline) -> Callable[[str, str], dict[str, float] | None]:
    """The verification scrape: the newest canonical signals the pipeline holds for (target, model)."""
    def read(target: str, model: str) -> dict[str, float] | None:
        s = pipeline.latest().get(target, {}).get(model)
        return None if s is None else dict(s.values)

    return read


async def replay_outputs(file: Path, settings: Settings, clock: ReplayClock, *, notifier: TickingSink | None = None,
                         actuator: WebhookActuator | None = None,
                         on_observation: Callable[[Observation], Awaitable[None]] | None = None) -> Pipeline:
    """Feed every scrape to the pipeline; send each incident event to ``notifier``; offer each new
    advisory of an open incident to ``actuator``; tick the notifier on the recorded clock."""
    pipeline = Pipeline(config=settings.detect.detector_config(), advisor=rules_advisor)
    offered: set[tuple[str, str]] = set()
    for scrape in read_timeline(file):
        clock.now = scrape.ts
        obs = pipeline.observe(scrape)
        for ev in obs.events:
            doc = ev.to_dict()
            if notifier is not None:
                await notifier.send(doc)
            if actuator is not None and ev.kind != "resolved":
                for adv in ev.incident.advisories:
                    key = (ev.incident.id, str(adv.get("action")))
                    if key not in offered:
                        offered.add(key)
                        entry = await actuator.act(adv, doc["incident"])
                        if entry["outcome"] in ("sent", "failed"):
                            ev.incident.record_action(entry)
        if actuator is not None:
            for entry in await actuator.verify_due(latest_reader(pipeline)):
                inc = pipeline.book.get(str(entry["incident"]))
                if inc is not None:
                    inc.record_action(entry)
        if on_observation is not None:
            await on_observation(obs)
        if notifier is not None:
            await notifier.tick()
    return pipeline
