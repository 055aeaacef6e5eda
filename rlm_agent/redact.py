"""Redaction of hostnames, IP addresses and model names before text leaves for an LLM.

Placeholders are stable within one payload (``host-1``, ``ip-1``, ``model-1``) so the model can still
tell two hosts apart without learning their names.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

_IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")
_IPV6 = re.compile(r"\b(?:[0-9a-fA-F]{1,4}:){2,7}[0-9a-fA-F]{1,4}\b")
# A dotted name with a letter in its last label: example.internal, gpu-7.us-east.corp.
_HOST = re.compile(r"\b(?=[A-Za-z0-9.-]*[A-Za-z])(?:[A-Za-z0-9-]{1,63}\.)+[A-Za-z][A-Za-z0-9-]{0,62}\b")


class Redactor:
    def __init__(self, *, models: list[str] | None = None, hosts: list[str] | None = None) -> None:
        self._map: dict[str, str] = {}
        self._counts: dict[str, int] = {}
        self._literals: list[tuple[str, str]] = []
        for m in models or []:
            if m:
                self._literals.append((m, self._placeholder("model", m)))
        for h in hosts or []:
            if h:
                self._literals.append((h, self._placeholder("host", h)))
        self._literals.sort(key=lambda pair: -len(pair[0]))  # longest first: no partial overlaps

    def _placeholder(self, kind: str, value: str) -> str:
        if value not in self._map:
            self._counts[kind] = self._counts.get(kind, 0) + 1
            self._map[value] = f"{kind}-{self._counts[kind]}"
        return self._map[value]

    def text(self, s: str) -> str:
        for literal, placeholder in self._literals:
            s = s.replace(literal, placeholder)
        s = _IPV4.sub(lambda m: self._placeholder("ip", m.group(0)), s)
        s = _IPV6.sub(lambda m: self._placeholder("ip", m.group(0)), s)
        return _HOST.sub(lambda m: self._placeholder("host", m.group(0)), s)

    def value(self, obj: Any) -> Any:
        """Redact every string inside a JSON-like value (keys are signal names: left alone)."""
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, dict):
            return {k: self.value(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self.value(v) for v in obj]
        return obj


def for_payload(payload: dict[str, Any]) -> Redactor:
    target = str(payload.get("target", ""))
    host = urlsplit(target).hostname if "://" in target else None
    return Redactor(models=[str(payload.get("model", ""))], hosts=[h for h in (host, target) if h])
