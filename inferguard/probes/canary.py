"""Canary probes: run canary_scripts/openai_stream_probe.py against a target's OpenAI-compatible API,
locally in a subprocess or inside a Daytona sandbox, and report its one JSON line.

A probe that could not run says so (``ran: false`` with the reason); it never reports success without
a measurement.
"""

from __future__ import annotations

import json
import sys
from importlib import resources
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import anyio

from inferguard.models import Target

SCRIPT = "openai_stream_probe.py"
FIELDS = ("ok", "status", "ttft_s", "tpot_s", "tokens", "error")


def script_text() -> str:
    return resources.files("canary_scripts").joinpath(SCRIPT).read_text(encoding="utf-8")


def api_base(target: Target | str) -> str:
    """The engine's API base from its /metrics URL: same scheme, host and port, path without /metrics."""
    url = target.url if isinstance(target, Target) else target
    parts = urlsplit(url)
    path = parts.path[: -len("/metrics")] if parts.path.endswith("/metrics") else parts.path
    return urlunsplit((parts.scheme, parts.netloc, path.rstrip("/"), "", ""))


def not_run(reason: str, where: str) -> dict[str, Any]:
    return {"ok": False, "status": None, "ttft_s": None, "tpot_s": None, "tokens": 0, "error": reason,
            "ran": False, "where": where}


def parse_output(stdout: str, where: str) -> dict[str, Any]:
    """The script's last JSON line; anything else means the probe did not run properly."""
    for line in reversed(stdout.strip().splitlines()):
        try:
            doc = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(doc, dict) and all(k in doc for k in FIELDS):
            ok = bool(doc["ok"]) and doc.get("ttft_s") is not None  # success needs a measurement
            return {**doc, "ok": ok, "ran": True, "where": where}
    return not_run(f"the probe printed no result: {stdout.strip()[-200:]!r}", where)


class LocalProbe:
    """Runs the canary script in a subprocess with this Python."""

    def __init__(self, *, model: str | None = None, mode: str = "chat", max_tokens: int = 16,
                 timeout_s: float = 30.0) -> None:
        self.model, self.mode, self.max_tokens, self.timeout_s = model, mode, max_tokens, timeout_s

    def argv(self, target: Target | str) -> list[str]:
        args = [api_base(target), "--mode", self.mode, "--max-tokens", str(self.max_tokens),
                "--timeout", str(self.timeout_s)]
        return [*args, "--model", self.model] if self.model else args

    async def probe(self, target: Target | str) -> dict[str, Any]:
        script = resources.files("canary_scripts").joinpath(SCRIPT)
        try:
            with anyio.fail_after(self.timeout_s + 10), resources.as_file(script) as path:
                proc = await anyio.run_process([sys.executable, str(path), *self.argv(target)], check=False)
        except TimeoutError:
            return not_run(f"the probe did not finish within {self.timeout_s + 10:.0f}s", "local")
        except OSError as exc:
            return not_run(f"the probe could not start: {exc}", "local")
        return parse_output(proc.stdout.decode("utf-8", "replace"), "local")

    async def aclose(self) -> None:
        return None


class DaytonaProbe:
    """Runs the same script inside a Daytona sandbox (extra ``daytona``), so the request comes from
    outside the serving network. The target must be reachable from the sandbox."""

    def __init__(self, api_key: str, local: LocalProbe) -> None:
        self._api_key = api_key
        self.local = local

    async def probe(self, target: Target | str) -> dict[str, Any]:
        try:
            from daytona import Daytona, DaytonaConfig
        except ImportError:
            return not_run("DAYTONA_API_KEY is set but the daytona SDK is not installed "
                           "(pip install 'inferguard[daytona]')", "daytona")
        argv = self.local.argv(target)
        code = f"import sys\nsys.argv = {['probe', *argv]!r}\n" + script_text()

        def run() -> dict[str, Any]:
            client = Daytona(DaytonaConfig(api_key=self._api_key))
            sandbox = client.create()
            try:
                resp = sandbox.process.code_run(code)
                return parse_output(str(getattr(resp, "result", "") or ""), "daytona")
            finally:
                client.delete(sandbox)

        try:
            with anyio.fail_after(self.local.timeout_s + 120):
                return await anyio.to_thread.run_sync(run, abandon_on_cancel=True)
        except Exception as exc:  # the SDK's errors are its own; the daemon must carry on
            return not_run(f"daytona sandbox failed: {type(exc).__name__}", "daytona")

    async def aclose(self) -> None:
        return None
