"""Load the two JSON Schemas shipped in ``rlm_agent/schemas`` and validate against them."""

from __future__ import annotations

import json
import math
from functools import cache
from importlib import resources
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no stubs installed
from jsonschema.exceptions import best_match  # type: ignore[import-untyped]

from .errors import AnswerInvalid, PayloadInvalid


@cache
def load_schema(name: str) -> dict[str, Any]:
    """``name`` is ``payload`` or ``answer``. Cached: the files never change at run time."""
    text = resources.files("rlm_agent").joinpath("schemas", f"{name}.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(load_schema(name))


def _path(parts: Any) -> str:
    return "/" + "/".join(str(p) for p in parts) if parts else ""


def _non_finite(obj: Any, where: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
    # JSON Schema's "number" admits NaN and infinities; the wire format (strict JSON) does not.
    if isinstance(obj, float) and not math.isfinite(obj):
        return where
    if isinstance(obj, dict):
        for k, v in obj.items():
            found = _non_finite(v, (*where, k))
            if found is not None:
                return found
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            found = _non_finite(v, (*where, i))
            if found is not None:
                return found
    return None


def _check(name: str, doc: Any) -> tuple[str, str] | None:
    if not isinstance(doc, dict):
        return f"expected a JSON object, got {type(doc).__name__}", ""
    version = doc.get("schema_version")
    if isinstance(version, str) and not version.startswith("1."):
        return f"unsupported schema_version {version!r} (this side speaks 1.x)", "/schema_version"
    err = best_match(_validator(name).iter_errors(doc))
    if err is not None:
        return err.message[:300], _path(err.absolute_path)
    bad = _non_finite(doc)
    if bad is not None:
        return "number is not finite (NaN or infinity)", _path(bad)
    return None


def validate_payload(payload: Any) -> dict[str, Any]:
    """Return the payload unchanged if valid; raise :class:`PayloadInvalid` naming the field if not."""
    problem = _check("payload", payload)
    if problem is not None:
        raise PayloadInvalid(*problem)
    assert isinstance(payload, dict)
    return payload


def validate_answer(answer: Any) -> dict[str, Any]:
    """Return the answer unchanged if valid; raise :class:`AnswerInvalid` naming the field if not."""
    problem = _check("answer", answer)
    if problem is not None:
        raise AnswerInvalid(*problem)
    assert isinstance(answer, dict)
    return answer
