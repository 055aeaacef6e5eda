"""``inferguard simulate``: OpenAI-compatible engine simulator with real vLLM/SGLang/DCGM /metrics dialects."""

from inferguard.simulate.cli import simulate_command
from inferguard.simulate.dialects import DIALECTS, SIMULATOR_INFO
from inferguard.simulate.model import EngineConfig
from inferguard.simulate.scenarios import SCENARIO_NAMES
from inferguard.simulate.server import Simulator, serve_simulator

__all__ = [
    "DIALECTS",
    "SCENARIO_NAMES",
    "SIMULATOR_INFO",
    "EngineConfig",
    "Simulator",
    "serve_simulator",
    "simulate_command",
]
