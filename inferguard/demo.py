"""`inferguard demo`: the simulator and the real watcher together, one incident from onset to resolution.

No configuration and no network beyond loopback: a simulated vLLM V1 engine serves /metrics on a free
port, the daemon watches it, and a script injects KV-cache pressure, then lets it recover. Its incident
memory is a throwaway embedded store: a synthetic incident never lands in the operator's own memory
(Redis, Upstash or the state directory), where `recall` would offer it as a past incident.
"""

from __future__ import annotations

import io
import tempfile
import time
from typing import Any

import anyio
from rich.console import Console
from rich.markup import escape

from inferguard.config import Settings
from inferguard.models import Target
from inferguard.protocols import EventDoc
from inferguard.runtime.build import build_daemon
from inferguard.runtime.daemon import DaemonOptions
from inferguard.simulate.server import Simulator
from inferguard.terminal import changes_text


class _Narrator:
    """The demo's view, a sink: prints each incident transition with its diagnosis and advisories."""

    name = "view"

    def __init__(self, console: Console | None, started: float) -> None:
        self.console = console
        self.started = started
        self._told: dict[str, tuple[str, tuple[str, ...]]] = {}  # what was last said per incident

    def say(self, text: str) -> None:
        if self.console is not None:
            # Piped, a line is a line: never wrapped mid-phrase at an assumed 80 columns.
            self.console.print(f"[dim]{time.monotonic() - self.started:5.0f}s[/] {text}",
                               soft_wrap=not self.console.is_terminal)

    async def aclose(self) -> None:
        pass

    async def send(self, event: EventDoc) -> None:
        inc = event["incident"]
        kind = str(event["event"]).removeprefix("incident.")
        mark = {"opened": "[bold red]● incident opened[/]", "updated": "[yellow]▲ incident updated[/]",
                "reopened": "[bold red]● incident reopened[/]",
                "resolved": "[green]✓ incident resolved[/]"}[kind]
        if kind == "resolved":
            self.say(f"{mark} all anomalies cleared")
            return
        active = [a for a in inc["anomalies"] if a["active"]]
        detail = "; ".join(f"{a['code']}: {escape(a['summary'])}" for a in active)
        severity = escape("[" + str(inc["severity"]) + "]")
        self.say(f"{mark} {severity} {escape(changes_text(event['changes']))}\n        {detail}")
        d = inc["diagnosis"]
        if not d:
            return
        advisories = inc["advisories"]
        actions = tuple(a["action"] for a in advisories)
        if self._told.get(inc["id"]) == (d["root_cause"], actions):
            return  # heard once per change
        self._told[inc["id"]] = (d["root_cause"], actions)
        self.say(f"        diagnosis: [bold]{escape(d['root_cause'])}[/] ({d['source']}, confidence "
                 f"{d['confidence']:.2f}, {d['claim_status']}) — {escape(d['summary'])}")
        for a in advisories[:3]:
            steps = "; ".join(a.get("engine_steps", [])[:2])
            self.say(f"        advisory: [cyan]{escape(a['action'])}[/] ({a['horizon']}) {escape(steps)}")


async def run_demo(*, fault_s: float = 25.0, healthy_s: float = 15.0, recovery_max_s: float = 35.0,
                   interval_s: float = 2.0, console: Console | None = None) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="inferguard-demo-") as state:
        memory = {"state_dir": state, "memory_state": "sqlite", "memory_recall": "sqlite"}
        settings = Settings.load(env_file=None, brain={"gmi_api_key": None, "brain_mode": "local"}, memory=memory)
        return await _run(settings, fault_s, healthy_s, recovery_max_s, interval_s, console)


async def _run(settings: Settings, fault_s: float, healthy_s: float, recovery_max_s: float, interval_s: float,
               console: Console | None) -> list[dict[str, Any]]:
    started = time.monotonic()
    narrator = _Narrator(console, started)
    async with Simulator(dialect="vllm-v1", scenario="healthy", model="demo/llama-3-8b-instruct", seed=7) as sim:
        target = Target(url=sim.target_url(0) + "/metrics", name="demo")
        options = DaemonOptions(interval_s=interval_s, listen=None, log_format="json", out=io.StringIO())
        daemon = build_daemon(settings, [target], options, view=narrator, outputs=False)
        narrator.say(f"simulated vLLM V1 engine at {target.url} (synthetic data); watching every {interval_s:g}s")
        narrator.say("healthy traffic")

        async def script() -> None:
            await anyio.sleep(healthy_s)
            sim.set_scenario("kv_pressure")
            narrator.say("[bold]injecting a fault:[/] KV-cache pressure (more arrivals, longer generations)")
            await anyio.sleep(fault_s)
            sim.set_scenario("healthy")
            narrator.say("[bold]fault removed:[/] healthy traffic again")
            deadline = time.monotonic() + recovery_max_s
            while time.monotonic() < deadline and daemon.pipeline.book.open_incidents():
                await anyio.sleep(0.5)
            await anyio.sleep(interval_s)
            daemon.stop()

        async with anyio.create_task_group() as tg:
            tg.start_soon(script)
            await daemon.run()
            tg.cancel_scope.cancel()
    return [i.to_dict() for i in sorted(daemon.pipeline.book.history, key=lambda i: i.opened_at)]
