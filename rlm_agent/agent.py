"""The entry points: validate the payload, diagnose by rules, let an LLM refine when configured."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from .advisories import advise_actions
from .diagnose import diagnose
from .errors import PayloadInvalid, RlmAgentError
from .features import extract
from .schema import validate_answer, validate_payload
from .vocab import SCHEMA_VERSION

if TYPE_CHECKING:
    from .llm import LLMClient


def rules_answer(payload: Any) -> dict[str, Any]:
    """The deterministic answer, unchecked: for a payload that already passed the schema or was built
    by a typed builder whose output the tests validate (InferGuard's hot path). Untrusted input goes
    through :func:`advise`, which validates it once."""
    f = extract(payload)
    return {
        "schema_version": SCHEMA_VERSION,
        "diagnosis": diagnose(f),
        "advisories": advise_actions(f),
    }


def _incident_payload(payload: Any) -> dict[str, Any]:
    checked = validate_payload(payload)
    if checked["kind"] != "incident":
        raise PayloadInvalid("advise takes kind 'incident'; use investigate for 'proactive'", "/kind")
    return checked


def advise(payload: dict[str, Any], *, llm: LLMClient | None = None) -> dict[str, Any]:
    """Diagnose an incident payload. Synchronous; with ``llm`` it runs :func:`aadvise` to completion
    (only outside an event loop: inside one, await :func:`aadvise`)."""
    if llm is not None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(_advise_once(payload, llm))
        raise RlmAgentError("advise(llm=...) called inside an event loop; await aadvise() instead")
    return validate_answer(rules_answer(_incident_payload(payload)))


async def _advise_once(payload: dict[str, Any], llm: LLMClient) -> dict[str, Any]:
    # The SDK's connection pool belongs to this short-lived loop: close it before the loop ends.
    try:
        return await aadvise(payload, llm=llm)
    finally:
        await llm.aclose()


def _checked_rules(payload: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    checked = _incident_payload(payload)
    return checked, rules_answer(checked)


async def aadvise(payload: dict[str, Any], *, llm: LLMClient | None = None,
                  rules: dict[str, Any] | None = None) -> dict[str, Any]:
    """Diagnose an incident payload; with an LLM the rules' answer is refined and checked.

    ``rules`` is the caller's :func:`rules_answer` for this very payload, so the rules never run twice.
    Validation and rules run in a worker thread: schema checks of a long window take tens of
    milliseconds, which the caller's event loop should not spend.
    """
    if rules is None:
        checked, answer = await asyncio.to_thread(_checked_rules, payload)
    else:
        checked, answer = await asyncio.to_thread(_incident_payload, payload), rules
    if llm is not None:
        from .refine import refine  # the LLM path loads the openai SDK only when it is used

        answer = await refine(checked, answer, llm)
    return await asyncio.to_thread(validate_answer, answer)


def investigate(payload: dict[str, Any]) -> dict[str, Any]:
    """Proactive W1–W4 investigation, deterministic (no network)."""
    from .proactive import investigate_rules

    return validate_answer(investigate_rules(validate_payload(payload)))


async def ainvestigate(payload: dict[str, Any], *, llm: LLMClient | None = None) -> dict[str, Any]:
    """Proactive W1–W4 investigation; with an LLM each sub-question gets its own explanation."""
    from .proactive import investigate_llm, investigate_rules

    checked = await asyncio.to_thread(validate_payload, payload)
    answer = await asyncio.to_thread(investigate_rules, checked)
    if llm is not None:
        answer = await investigate_llm(checked, answer, llm)
    return await asyncio.to_thread(validate_answer, answer)
