"""The brain clients: ``local`` (rlm_agent in-process) or ``remote`` (HTTP to ``rlm-agent serve``).

The only inferguard module that imports ``rlm_agent``, and only when a :class:`LocalBrain` is built:
in remote mode nothing of ``rlm_agent`` is loaded. Both take the typed payloads of
:mod:`inferguard.brain.payloads`. ``rules`` is the synchronous, in-process answer (None when the
brain is remote); ``advise`` is the refinement (LLM or remote), awaited off the scrape loop. Every
failure is a :class:`PayloadError` (or :class:`ConfigError` when building), never a raw exception.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Mapping
from typing import Any, Literal, Protocol, cast, runtime_checkable
from urllib.parse import urlsplit

import httpx

from inferguard.errors import ConfigError, PayloadError

from .payloads import Answer, IncidentPayload, ProactivePayload, parse_answer


@runtime_checkable
class Brain(Protocol):
    """``rules`` answers at once in-process (or None); ``advise``/``investigate`` may take seconds."""

    @property
    def refines(self) -> bool:
        """True when ``advise`` can add to the rules' answer (an LLM, or a remote brain)."""
        ...

    def rules(self, payload: IncidentPayload) -> Answer | None: ...

    async def advise(self, payload: IncidentPayload, rules: Answer | None = None) -> Answer: ...

    async def investigate(self, payload: ProactivePayload) -> Answer: ...

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
                       ("redact", ("llm_redact", "redact")),
                       ("proactive_share", ("llm_proactive_share", "proactive_share")),
                       ("price_input_per_mtok", ("llm_price_input_per_mtok", "price_input_per_mtok")),
                       ("price_output_per_mtok", ("llm_price_output_per_mtok", "price_output_per_mtok"))):
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
        return None if self._llm is None else self._llm.usage()

    @property
    def refines(self) -> bool:
        return self._llm is not None

    def rules(self, payload: IncidentPayload) -> Answer:
        """The deterministic answer, synchronously. The payload was built by the typed builder, so it
        is not schema-checked here: that check is for process boundaries and tests."""
        try:
            answer = self._agent.rules_answer(payload)
        except self._agent.RlmAgentError as exc:
            raise PayloadError(f"brain (rules): {exc}") from None
        return cast(Answer, answer)

    async def advise(self, payload: IncidentPayload, rules: Answer | None = None) -> Answer:
        try:
            answer = await self._agent.aadvise(cast(dict[str, Any], payload), llm=self._llm,
                                               rules=cast(dict[str, Any] | None, rules))
        except self._agent.RlmAgentError as exc:
            raise PayloadError(f"brain (local): {exc}") from None
        return parse_answer(answer)

    async def investigate(self, payload: ProactivePayload) -> Answer:
        try:
            answer = await self._agent.ainvestigate(cast(dict[str, Any], payload), llm=self._llm)
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

    refines = True

    def rules(self, payload: IncidentPayload) -> None:
        return None  # the rules run on the other side, with the LLM

    async def _post(self, path: str, payload: Mapping[str, Any]) -> Answer:
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

    async def advise(self, payload: IncidentPayload, rules: Answer | None = None) -> Answer:
        return await self._post("/v1/advise", payload)

    async def investigate(self, payload: ProactivePayload) -> Answer:
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
        self._counter = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, key: str, payload: Any, on_answer: Callable[[Answer], object],
               *, kind: Literal["advise", "investigate"] = "advise", rules: Answer | None = None) -> None:
        """Schedule one call (from inside the running loop); ``on_answer`` gets the checked answer.
        ``rules`` is the rules' answer already computed for this payload (never computed twice)."""
        self._counter += 1  # unique across keys: a key's entry is dropped once its newest answer lands
        seq = self._seq[key] = self._counter
        task = asyncio.get_running_loop().create_task(self._run(key, seq, payload, on_answer, kind, rules))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, key: str, seq: int, payload: Any, on_answer: Callable[[Answer], object], kind: str,
                   rules: Answer | None) -> None:
        async with self._slots:
            if self._seq.get(key) != seq:
                return  # superseded while it waited for a slot
            try:
                if kind == "advise":
                    answer = await self.brain.advise(payload, rules)
                else:
                    answer = await self.brain.investigate(payload)
            except PayloadError as exc:
                self.failures += 1
                self.last_error = str(exc)[:300]
                return
        if self._seq.pop(key, None) == seq:
            done = on_answer(answer)
            if inspect.isawaitable(done):
                await done

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
