"""The brain client: ``local`` (rlm_agent in-process) or ``remote`` (HTTP to ``rlm-agent serve``).

The only inferguard module that imports ``rlm_agent``. Both modes take the same payload dicts (built
by :mod:`inferguard.payloads`) and return answers validated by :func:`payloads.parse_answer`; every
failure is a :class:`PayloadError` (or :class:`ConfigError` when building), never a raw exception.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any, Literal, Protocol, runtime_checkable
from urllib.parse import urlsplit

import httpx

from .errors import ConfigError, PayloadError
from .payloads import build_incident_payload, parse_answer


@runtime_checkable
class Brain(Protocol):
    async def advise(self, payload: dict[str, Any]) -> dict[str, Any]: ...

    async def investigate(self, payload: dict[str, Any]) -> dict[str, Any]: ...

    async def aclose(self) -> None: ...


def _secret(value: Any) -> str | None:
    if value is None:
        return None
    get = getattr(value, "get_secret_value", None)  # pydantic SecretStr
    raw = get() if callable(get) else value
    return str(raw) or None


def _pick(obj: Any, *names: str) -> Any:
    for name in names:
        if isinstance(obj, Mapping):
            if name in obj and obj[name] is not None:
                return obj[name]
        elif getattr(obj, name, None) is not None:
            return getattr(obj, name)
    return None


def llm_settings(obj: Any) -> Any:
    """Turn the daemon's brain settings (or a mapping, or rlm_agent.LLMSettings) into LLMSettings.

    None means no LLM. Settings without a key still give a client, whose answers then say
    ``fallback_reason: llm_no_api_key``: the operator asked for an LLM and should see why it is absent.
    """
    import rlm_agent

    if obj is None or isinstance(obj, rlm_agent.LLMSettings):
        return obj
    kwargs: dict[str, Any] = {"api_key": _secret(_pick(obj, "gmi_api_key", "api_key"))}
    for key, names in (("base_url", ("gmi_base_url", "base_url")), ("model", ("gmi_model", "model")),
                       ("timeout_s", ("llm_timeout_seconds", "timeout_seconds", "timeout_s")),
                       ("max_calls_per_hour", ("llm_max_calls_per_hour", "max_calls_per_hour")),
                       ("redact", ("llm_redact", "redact"))):
        value = _pick(obj, *names)
        if value is not None:
            kwargs[key] = value
    try:
        return rlm_agent.LLMSettings(**kwargs)
    except rlm_agent.RlmAgentError as exc:
        raise ConfigError(getattr(exc, "setting", "llm"), str(exc)) from None


class LocalBrain:
    """rlm_agent in-process. The rules run inline (sub-millisecond); LLM calls are awaited, so the
    event loop keeps running while one is in flight."""

    def __init__(self, llm: Any = None) -> None:
        import rlm_agent

        self._agent = rlm_agent
        settings = llm_settings(llm)
        self._llm = rlm_agent.LLMClient(settings) if settings is not None else None

    @property
    def usage(self) -> dict[str, Any] | None:
        return None if self._llm is None else self._llm.usage.as_dict()

    async def advise(self, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            answer = await self._agent.aadvise(payload, llm=self._llm)
        except self._agent.RlmAgentError as exc:
            raise PayloadError(f"brain (local): {exc}") from None
        return parse_answer(answer)

    async def investigate(self, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            answer = await self._agent.ainvestigate(payload, llm=self._llm)
        except self._agent.RlmAgentError as exc:
            raise PayloadError(f"brain (local): {exc}") from None
        return parse_answer(answer)

    async def aclose(self) -> None:
        if self._llm is not None:
            await self._llm.aclose()


class RemoteBrain:
    """HTTP to ``rlm-agent serve``. The timeout must cover the remote side's LLM timeout."""

    def __init__(self, url: str, *, timeout_s: float = 30.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        self._client = httpx.AsyncClient(base_url=self.url, timeout=timeout_s, trust_env=False,
                                         transport=transport)

    async def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            response = await self._client.post(path, json=payload)
        except httpx.TimeoutException:
            raise PayloadError(f"brain at {self.url}: timeout") from None
        except httpx.HTTPError as exc:
            raise PayloadError(f"brain at {self.url}: {type(exc).__name__}") from None
        try:
            body = response.json()
        except ValueError:
            raise PayloadError(f"brain at {self.url}: HTTP {response.status_code}, body is not JSON") from None
        if response.status_code != 200:
            err = body.get("error", {}) if isinstance(body, dict) else {}
            detail = f"{err.get('type', 'error')}: {err.get('message', '')}" if isinstance(err, dict) else ""
            where = f" at {err['path']}" if isinstance(err, dict) and err.get("path") else ""
            raise PayloadError(f"brain at {self.url}: HTTP {response.status_code} {detail}{where}"[:600])
        return parse_answer(body)

    async def advise(self, payload: dict[str, Any]) -> dict[str, Any]:
        return await self._post("/v1/advise", payload)

    async def investigate(self, payload: dict[str, Any]) -> dict[str, Any]:
        return await self._post("/v1/investigate", payload)

    async def aclose(self) -> None:
        await self._client.aclose()


class BackgroundBrain:
    """Runs brain calls as tasks so the scrape cycle never awaits the LLM.

    ``submit`` returns at once. At most ``max_in_flight`` calls run together; per key (an incident
    id) only the newest request matters: one still waiting for a slot is replaced, and an answer
    to an older request than the newest submitted is dropped, never delivered over a newer one.
    """

    def __init__(self, brain: Brain, *, max_in_flight: int = 4) -> None:
        self.brain = brain
        self.failures = 0
        self.last_error: str | None = None
        self._slots = asyncio.Semaphore(max_in_flight)
        self._seq: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, key: str, payload: dict[str, Any], on_answer: Callable[[dict[str, Any]], None],
               *, kind: Literal["advise", "investigate"] = "advise") -> None:
        """Schedule one call (from inside the running loop); ``on_answer`` gets the validated answer."""
        seq = self._seq.get(key, 0) + 1
        self._seq[key] = seq
        task = asyncio.get_running_loop().create_task(self._run(key, seq, payload, on_answer, kind))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, key: str, seq: int, payload: dict[str, Any],
                   on_answer: Callable[[dict[str, Any]], None], kind: str) -> None:
        async with self._slots:
            if self._seq.get(key) != seq:
                return  # superseded while it waited for a slot
            try:
                call = self.brain.advise if kind == "advise" else self.brain.investigate
                answer = await call(payload)
            except PayloadError as exc:
                self.failures += 1
                self.last_error = str(exc)[:300]
                return
        if self._seq.get(key) == seq:
            on_answer(answer)

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def drain(self) -> None:
        """Wait for every submitted call (shutdown, tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self.brain.aclose()


def advise_rules(payload: dict[str, Any]) -> dict[str, Any]:
    """The deterministic answer, synchronously: no network, no event loop (replay, scan, tests)."""
    import rlm_agent

    try:
        answer = rlm_agent.advise(payload)
    except rlm_agent.RlmAgentError as exc:
        raise PayloadError(f"brain (rules): {exc}") from None
    return parse_answer(answer)


def rules_advisor(incident: Any, window: list[dict[str, Any]], similar: list[dict[str, Any]]) -> dict[str, Any]:
    """A synchronous advisor for the pipeline: incident (an object with ``to_dict()`` or the dict
    itself), its signals window and similar incidents in; the validated rules answer out."""
    as_dict = incident.to_dict() if hasattr(incident, "to_dict") else incident
    return advise_rules(build_incident_payload(as_dict, window, similar))


def build_brain(mode: str, *, url: str | None, llm: Any) -> Brain:
    """``local`` (default) or ``remote``; ``llm`` is the daemon's brain settings or None."""
    if mode == "local":
        return LocalBrain(llm)
    if mode == "remote":
        if not url:
            raise ConfigError("INFERGUARD_BRAIN_URL", "required when INFERGUARD_BRAIN_MODE=remote")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError("INFERGUARD_BRAIN_URL", f"not an http(s) URL: {url[:100]!r}")
        timeout = _pick(llm, "llm_timeout_seconds", "timeout_s") if llm is not None else None
        return RemoteBrain(url, timeout_s=float(timeout) + 10.0 if timeout else 30.0)
    raise ConfigError("INFERGUARD_BRAIN_MODE", f"must be 'local' or 'remote', got {mode!r}")
