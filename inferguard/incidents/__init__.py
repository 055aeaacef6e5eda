"""Incidents: correlation of findings per target, stable fingerprints, lifecycle and flap damping."""

from inferguard.incidents.lifecycle import (
    Anomaly,
    Incident,
    IncidentBook,
    IncidentEvent,
    fingerprint,
    incident_from_dict,
)

__all__ = ["Anomaly", "Incident", "IncidentBook", "IncidentEvent", "fingerprint", "incident_from_dict"]
