"""The brain stage and its clients: typed payloads out, typed diagnosis updates back.

``payloads`` is the wire format (TypedDicts), ``client`` reaches the brain (local rlm_agent or a remote
``rlm-agent serve``), ``stage`` is the one door every incident and proactive check goes through.
Importing this package loads nothing of ``rlm_agent``; only building a :class:`LocalBrain` does.
"""

from inferguard.brain.client import BackgroundBrain, Brain, LocalBrain, RemoteBrain, build_brain, llm_settings
from inferguard.brain.payloads import (
    Answer,
    IncidentPayload,
    ProactivePayload,
    build_incident_payload,
    build_proactive_payload,
    parse_answer,
)
from inferguard.brain.stage import BrainStage, DiagnosisUpdate

__all__ = [
    "Answer",
    "BackgroundBrain",
    "Brain",
    "BrainStage",
    "DiagnosisUpdate",
    "IncidentPayload",
    "LocalBrain",
    "ProactivePayload",
    "RemoteBrain",
    "build_brain",
    "build_incident_payload",
    "build_proactive_payload",
    "llm_settings",
    "parse_answer",
]
