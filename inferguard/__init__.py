"""InferGuard: catch, explain and advise on incidents in LLM serving engines.

The public surface is this list; everything else is private to the package and may change.
"""

from inferguard.config import Settings
from inferguard.detectors import Condition, Detector, DetectorBank, DetectorConfig, Window
from inferguard.errors import (
    ConfigError,
    ExpositionError,
    InferGuardError,
    PayloadError,
    TimelineError,
)
from inferguard.incidents import Incident, IncidentBook, IncidentEvent
from inferguard.models import ANOMALY_CODES, SIGNALS, Evidence, Exposition, Finding, Scrape, Signals, Target
from inferguard.pipeline import Observation, Pipeline
from inferguard.protocols import Actuator, IncidentStore, Probe, Sink, Source, StateStore

__version__ = "0.1.0"

__all__ = [
    "ANOMALY_CODES",
    "SIGNALS",
    "Actuator",
    "Condition",
    "ConfigError",
    "Detector",
    "DetectorBank",
    "DetectorConfig",
    "Evidence",
    "Exposition",
    "ExpositionError",
    "Finding",
    "Incident",
    "IncidentBook",
    "IncidentEvent",
    "IncidentStore",
    "InferGuardError",
    "Observation",
    "PayloadError",
    "Pipeline",
    "Probe",
    "Scrape",
    "Settings",
    "Signals",
    "Sink",
    "Source",
    "StateStore",
    "Target",
    "TimelineError",
    "Window",
    "__version__",
]
