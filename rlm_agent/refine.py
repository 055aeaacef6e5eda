"""The LLM refinement of an incident diagnosis, checked against the evidence before it is used.

The LLM's answer is untrusted input. Its cause must survive :mod:`.verify`; its words are sanitised
and bounded (:mod:`.untrusted`); its confidence never raises ours (the rules' confidence comes from
the evidence, and agreeing adds no evidence); and ``fallback_reason`` is built only from our own
vocabulary (:data:`.errors.FALLBACK_REASONS`), never from anything the provider sent.
"""

from __future__ import annotations

import copy
from typing import Any

from .errors import LLMError, fallback_reason
from .features import Features, extract
from .llm import LLMClient
from .prompt import LLM_DIAGNOSIS_SCHEMA, SYSTEM, cache_key, incident_document, user_message
from .untrusted import text
from .verify import contradiction, discriminating, supported_evidence

SUMMARY_MAX = 1000  # characters of an LLM summary kept: two sentences for an on-call engineer, with room
INFERRED_MAX = 0.6  # a cause the rules did not reach is indirect at best


def _fallback(answer: dict[str, Any], reason: str, llm_info: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(answer)
    out["diagnosis"]["source"] = "rules"
    out["diagnosis"]["fallback_reason"] = reason
    out["llm"] = llm_info
    return out


def rejection(f: Features, root: str, rules: dict[str, Any], evidence: list[dict[str, Any]]) -> str | None:
    """Why the claim ``root`` (with its supported ``evidence``) may not replace ``rules``; None if it may."""
    why = contradiction(f, root)
    if why is not None or root == rules["root_cause"]:
        return why
    if root != "insufficient_evidence":  # claiming less needs no evidence; claiming another cause does
        if not evidence:
            return "none of its evidence values occur in the telemetry"
        if not discriminating(f, root, rules["root_cause"], evidence):
            if rules["root_cause"] == "insufficient_evidence":
                return f"none of its evidence is a sign of {root}"
            return f"none of its evidence tells it apart from {rules['root_cause']}"
    if rules["claim_status"] == "measured":
        # Evidence first: a cause measured from complete, live signals is not overruled by a narrative.
        return f"the rules measured {rules['root_cause']} from complete live evidence"
    return None


async def refine(payload: dict[str, Any], answer: dict[str, Any], llm: LLMClient) -> dict[str, Any]:
    """Ask the LLM; accept, downgrade or fall back. Never raises for LLM trouble."""
    f = extract(payload)
    rules = answer["diagnosis"]
    info: dict[str, Any] = {"model": text(llm.settings.model, 200), "status": "failed"}
    doc = incident_document(payload, f, rules, redact=llm.settings.redact)
    hits_before = llm.totals.cache_hits
    try:
        claim = await llm.complete_json(
            system=SYSTEM, user=user_message(doc, "Diagnose this incident."),
            schema=LLM_DIAGNOSIS_SCHEMA, schema_name="diagnosis", purpose="incident",
            cache_key=cache_key("incident", f, doc, llm.settings.model))
    except LLMError as exc:
        info["reason"] = exc.reason
        return _fallback(answer, fallback_reason(exc.reason, exc.detail), info)
    info["cached"] = llm.totals.cache_hits > hits_before
    root = str(claim["root_cause"])  # the schema holds it to ROOT_CAUSES
    evidence, dropped = supported_evidence(f, list(claim.get("evidence", [])))
    info["evidence_dropped"] = dropped
    why = rejection(f, root, rules, evidence)
    if why is not None:
        # Downgraded: the claim is kept on record as not_proven; the rules' diagnosis stands.
        info["status"] = "downgraded"
        info["rejected"] = {"root_cause": root, "claim_status": "not_proven", "reason": why}
        return _fallback(answer, fallback_reason("contradicted", f"{root} ({why})"), info)
    info["status"] = "accepted"
    out = copy.deepcopy(answer)
    diagnosis = out["diagnosis"]
    llm_conf = float(claim["confidence"])
    if root != rules["root_cause"]:
        diagnosis["root_cause"] = root
        diagnosis["confidence"] = round(min(llm_conf, INFERRED_MAX), 3)
        diagnosis["claim_status"] = "synthetic" if f.synthetic else (
            "not_proven" if root == "insufficient_evidence" else "inferred")
    else:
        # Agreement adds words, not evidence: the confidence may only go down.
        diagnosis["confidence"] = round(min(llm_conf, float(rules["confidence"])), 3)
    diagnosis["summary"] = text(claim["summary"], SUMMARY_MAX) or diagnosis["summary"]
    diagnosis["evidence"] = evidence[:16] or diagnosis["evidence"]
    diagnosis["source"] = "llm"
    diagnosis["fallback_reason"] = None
    out["llm"] = info
    return out
