"""rlm_agent's own small error tree. It never imports inferguard, so it cannot share its errors."""

from __future__ import annotations


class RlmAgentError(Exception):
    """Root of every error rlm_agent raises on purpose."""


class PayloadInvalid(RlmAgentError):
    """A payload failed the payload schema. ``path`` points at the offending field."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(f"payload invalid at {path or '<root>'}: {message}")
        self.path = path
        self.detail = message


class AnswerInvalid(RlmAgentError):
    """An answer (ours or the LLM's) failed the answer schema. ``path`` points at the field."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(f"answer invalid at {path or '<root>'}: {message}")
        self.path = path
        self.detail = message


# Why an answer says ``source: "rules"`` although an LLM is configured: ``llm_<reason>``. The closed list
# is the contract with the reader (docs/brain.md); a reason outside it is a bug, not a new value.
LLM_REASONS = (
    "no_api_key", "timeout", "refusal", "invalid_json", "invalid_answer", "empty_answer", "rate_limited",
    "server_error", "auth_failed", "connect", "http_status", "budget_exhausted", "sdk_error",
)
FALLBACK_REASONS = tuple(f"llm_{r}" for r in (*LLM_REASONS, "contradicted", "no_leading_indicator"))


def fallback_reason(reason: str, detail: str = "") -> str:
    """``llm_<reason>[: detail]``; ``detail`` is composed by rlm_agent (codes, numbers, our words)."""
    code = f"llm_{reason}"
    if code not in FALLBACK_REASONS:
        raise ValueError(f"not a fallback reason: {code!r}")
    # Kept to printable ASCII and bounded even so: what we compose from telemetry numbers stays short.
    detail = "".join(ch for ch in detail if " " <= ch <= "~")[:300]
    return code + (f": {detail}" if detail else "")


class LLMError(RlmAgentError):
    """The LLM path failed. ``reason`` (one of :data:`LLM_REASONS`) becomes the answer's ``fallback_reason``.

    Messages are built here from codes and status numbers only, never from provider text, so a
    key echoed back by a proxy can never reach a log or an answer.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        if reason not in LLM_REASONS:
            raise ValueError(f"not an LLM failure reason: {reason!r}")
        super().__init__(reason + (f": {detail}" if detail else ""))
        self.reason = reason
        self.detail = detail


class SettingsInvalid(RlmAgentError):
    """An LLM setting is invalid. ``setting`` names the environment variable or argument."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting
