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


class LLMError(RlmAgentError):
    """The LLM path failed. ``reason`` is a short code used as the answer's ``fallback_reason``.

    Messages are built here from codes and status numbers only, never from provider text, so a
    key echoed back by a proxy can never reach a log or an answer.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason + (f": {detail}" if detail else ""))
        self.reason = reason
        self.detail = detail


class SettingsInvalid(RlmAgentError):
    """An LLM setting is invalid. ``setting`` names the environment variable or argument."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting
