"""Entry point for ``inferguard simulate`` (mounted by the main CLI) and ``python -m inferguard.simulate``."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys

from inferguard.simulate.dialects import DIALECTS
from inferguard.simulate.scenarios import SCENARIOS
from inferguard.simulate.server import Simulator, serve_simulator


def _banner(sim: Simulator) -> None:
    n = len(sim.targets)
    lines = [
        f"inferguard simulate: {n} simulated {sim.dialect} engine(s), model {sim.model_name!r}, "
        f"speed x{sim.speed:g}, scenario {sim.targets[0].model.scenario.name}",
        f"  target 0:  {sim.url}/metrics   (OpenAI API at {sim.url}/v1)",
    ]
    if n > 1:
        lines.append(f"  target i:  {sim.url}/t/<i>/metrics   for i in 1..{n - 1}")
    lines.append(f'  switch:    curl -X POST {sim.url}/admin/scenario -d \'{{"scenario": "kv_pressure"}}\'')
    lines.append("  every page carries inferguard_simulator_info{scenario=...}: incidents from it are synthetic")
    print("\n".join(lines), flush=True)


def _after_shutdown(signum: int, frame: object) -> None:
    """uvicorn handled SIGTERM already (clean shutdown) and re-raises it: nothing left to do."""


def simulate_command(
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    dialect: str = "vllm-v1",
    scenario: str = "healthy",
    targets: int = 1,
    model: str = "sim/llama-3-8b-instruct",
    seed: int = 0,
    speed: float = 1.0,
) -> int:
    """Serve simulated engines until SIGINT/SIGTERM; returns the exit code.

    Bad arguments raise :class:`inferguard.errors.ConfigError` naming the setting, before anything listens.
    """
    # construct once up front so bad arguments fail before the event loop starts
    Simulator(targets=targets, dialect=dialect, scenario=scenario, model=model, seed=seed, speed=speed,
              host=host, port=port)
    # uvicorn re-raises a captured SIGINT/SIGTERM after its clean shutdown: both are a normal exit here
    previous = signal.signal(signal.SIGTERM, _after_shutdown)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve_simulator(host=host, port=port, dialect=dialect, scenario=scenario,
                                        targets=targets, model=model, seed=seed, speed=speed, ready=_banner))
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m inferguard.simulate``: the same command without the main CLI."""
    import argparse

    from inferguard.errors import ConfigError

    p = argparse.ArgumentParser(prog="python -m inferguard.simulate", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--dialect", choices=DIALECTS, default="vllm-v1")
    p.add_argument("--scenario", choices=tuple(SCENARIOS), default="healthy")
    p.add_argument("--targets", type=int, default=1)
    p.add_argument("--model", default="sim/llama-3-8b-instruct")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--speed", type=float, default=1.0)
    a = p.parse_args(argv)
    try:
        return simulate_command(host=a.host, port=a.port, dialect=a.dialect, scenario=a.scenario,
                                targets=a.targets, model=a.model, seed=a.seed, speed=a.speed)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
