"""rlm_agent: the brain. Never imports inferguard; speaks versioned dict payloads.

Public surface: :func:`advise` / :func:`aadvise` (incident diagnosis and advisories),
:func:`investigate` / :func:`ainvestigate` (proactive W1–W4), :func:`rules_answer` (the rules alone,
for a caller whose payloads are already checked), the LLM client and its settings,
schema validation and the error tree. Everything else is private.
"""

from __future__ import annotations

from .agent import aadvise, advise, ainvestigate, investigate, rules_answer
from .errors import AnswerInvalid, LLMError, PayloadInvalid, RlmAgentError
from .llm import LLMClient, LLMSettings
from .schema import load_schema, validate_answer, validate_payload
from .vocab import ACTIONS, ROOT_CAUSES, SCHEMA_VERSION

__all__ = [
    "ACTIONS",
    "ROOT_CAUSES",
    "SCHEMA_VERSION",
    "AnswerInvalid",
    "LLMClient",
    "LLMError",
    "LLMSettings",
    "PayloadInvalid",
    "RlmAgentError",
    "aadvise",
    "advise",
    "ainvestigate",
    "investigate",
    "load_schema",
    "rules_answer",
    "validate_answer",
    "validate_payload",
]
