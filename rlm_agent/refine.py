"""The LLM refinement of an incident diagnosis, checked against the evidence before it is used."""

from __future__ import annotations

import copy
from typing import Any

from .errors import LLMError
from .features import extract
from .llm import LLMClient
from .prompt import LLM_DIAGNOSIS_SCHEMA, SYSTEM, cache_key, incident_document, user_message
from .verify import contradiction, supported_evidence


def _fallback(answer: dict[str, Any], reason: str, llm_info: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(answer)
    out["diagnosis"]["source"] = "rules"
    out["diagnosis"]["fallback_reason"] = reason[:500]
    out["llm"] = llm_info
    return out


async def refine(payload: dict[str, Any], answer: dict[str, Any], llm: LLMClient) -> dict[str, Any]:
    """Ask the LLM; accept, downgrade or fall back. Never raises for LLM trouble."""
    f = extract(payload)
    rules = answer["diagnosis"]
    info: dict[str, Any] = {"model": llm.settings.model, "status": "failed"}
    doc = incident_document(payload, f, rules, redact=llm.settings.redact)
    hits_before = llm.usage.cache_hits
    try:
        claim = await llm.complete_json(
            system=SYSTEM, user=user_message(doc, "Diagnose this incident."),
            schema=LLM_DIAGNOSIS_SCHEMA, schema_name="diagnosis",
            cache_key=cache_key("incident", f, doc, llm.settings.model))
    except LLMError as exc:
        info["reason"] = exc.reason
        return _fallback(answer, f"llm_{exc.reason}" + (f": {exc.detail}" if exc.detail else ""), info)
    info["cached"] = llm.usage.cache_hits > hits_before
    root = str(claim["root_cause"])
    evidence, dropped = supported_evidence(f, list(claim.get("evidence", [])))
    info["evidence_dropped"] = dropped
    why = contradiction(f, root)
    if why is None and root != rules["root_cause"] and not evidence and root != "insufficient_evidence":
        why = "none of its evidence values occur in the telemetry"
    if why is None and root != rules["root_cause"] and rules["claim_status"] == "measured":
        # Evidence first: a cause measured from complete, live signals is not overruled by a narrative.
        why = f"the rules measured {rules['root_cause']} from complete live evidence"
    if why is not None:
        # Downgraded: the claim is kept on record as not_proven; the rules' diagnosis stands.
        info["status"] = "downgraded"
        info["rejected"] = {"root_cause": root, "claim_status": "not_proven", "reason": why}
        return _fallback(answer, f"llm_contradicted: {root} ({why})", info)
    info["status"] = "accepted"
    out = copy.deepcopy(answer)
    diagnosis = out["diagnosis"]
    llm_conf = float(claim["confidence"])
    if root == rules["root_cause"]:
        diagnosis["confidence"] = round(min(0.97, (llm_conf + float(rules["confidence"])) / 2 + 0.05), 3)
    else:
        # The rules did not reach this cause: the claim is indirect at best.
        diagnosis["root_cause"] = root
        diagnosis["confidence"] = round(min(llm_conf, 0.6), 3)
        diagnosis["claim_status"] = "synthetic" if f.synthetic else (
            "not_proven" if root == "insufficient_evidence" else "inferred")
    diagnosis["summary"] = str(claim["summary"])[:4000] or diagnosis["summary"]
    diagnosis["evidence"] = evidence[:16] or diagnosis["evidence"]
    diagnosis["source"] = "llm"
    diagnosis["fallback_reason"] = None
    out["llm"] = info
    return out
