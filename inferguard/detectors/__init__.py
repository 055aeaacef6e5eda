"""Detectors: pure functions of (signals window, config) plus the bank that applies persistence."""

from inferguard.detectors.bank import DETECTORS, Detector, DetectorBank
from inferguard.detectors.config import DetectorConfig
from inferguard.detectors.window import Condition, Window

__all__ = ["DETECTORS", "Condition", "Detector", "DetectorBank", "DetectorConfig", "Window"]
