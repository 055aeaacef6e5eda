"""The LLM client: the openai SDK's async client against any OpenAI-compatible endpoint.

Structured output (JSON Schema, JSON mode as fallback), a timeout, bounded retries on 429/5xx, token
and cost accounting per purpose, a response cache, and a call budget per hour in which incidents come
first: proactive calls may use only ``proactive_share`` of it. Every failure is an :class:`LLMError`
with a short ``reason``; the caller turns it into the rules' answer.

Only the SDK's public API is used (``openai.AsyncOpenAI``, ``openai.DefaultAsyncHttpxClient`` and the
documented error classes), so any SDK in the range pyproject.toml declares works, whichever HTTP
library it is built on.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import jsonschema  # type: ignore[import-untyped]  # no stubs installed

from .errors import LLMError, SettingsInvalid

if TYPE_CHECKING:
    from openai import AsyncOpenAI

DEFAULT_BASE_URL = "https://api.gmi-serving.com/v1"
DEFAULT_MODEL = "openai/gpt-oss-120b"
MAX_BACKOFF_S = 5.0
DEFAULT_MAX_CALLS_PER_HOUR = 60
DEFAULT_PROACTIVE_SHARE = 0.25  # of the hourly budget; incidents may use all of it, proactive calls this much
PURPOSES = ("incident", "proactive")
Purpose = Literal["incident", "proactive"]


def _env_float(env: Mapping[str, str], name: str, default: float | None) -> float | None:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsInvalid(name, f"not a number: {raw[:40]!r}") from None
    if not math.isfinite(value):
        raise SettingsInvalid(name, f"must be a finite number, not {raw[:40]!r}")
    if value < 0:
        raise SettingsInvalid(name, "must not be negative")
    return value


def _env_bool(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise SettingsInvalid(name, f"not a boolean: {raw[:20]!r}")


@dataclass(frozen=True, slots=True)
class LLMSettings:
    """How to reach the LLM. ``api_key`` is never part of repr, logs, payloads or errors."""

    api_key: str | None = field(default=None, repr=False)
    base_url: str = DEFAULT_BASE_URL
    model: str = DEFAULT_MODEL
    timeout_s: float = 20.0
    max_calls_per_hour: int | None = DEFAULT_MAX_CALLS_PER_HOUR  # None: no limit
    redact: bool = False
    max_retries: int = 2
    price_input_per_mtok: float | None = None  # USD per million prompt tokens, for cost accounting
    price_output_per_mtok: float | None = None
    proactive_share: float = DEFAULT_PROACTIVE_SHARE  # 0 turns proactive LLM calls off

    def __post_init__(self) -> None:
        if not math.isfinite(self.timeout_s) or self.timeout_s <= 0:
            raise SettingsInvalid("INFERGUARD_LLM_TIMEOUT_SECONDS", "must be a positive number")
        if self.max_calls_per_hour is not None and self.max_calls_per_hour < 0:
            raise SettingsInvalid("INFERGUARD_LLM_MAX_CALLS_PER_HOUR", "must not be negative")
        if not 0.0 <= self.proactive_share <= 1.0:
            raise SettingsInvalid("INFERGUARD_LLM_PROACTIVE_SHARE", "must be between 0 and 1")
        for name, price in (("INFERGUARD_LLM_PRICE_INPUT_PER_MTOK", self.price_input_per_mtok),
                            ("INFERGUARD_LLM_PRICE_OUTPUT_PER_MTOK", self.price_output_per_mtok)):
            if price is not None and (not math.isfinite(price) or price < 0):
                raise SettingsInvalid(name, "must be a finite number, not negative")
        if self.max_retries < 0:
            raise SettingsInvalid("max_retries", "must not be negative")
        if not self.base_url.startswith(("http://", "https://")):
            raise SettingsInvalid("GMI_BASE_URL", "must start with http:// or https://")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> LLMSettings:
        """Read GMI_* and INFERGUARD_LLM_* from ``env`` (pass ``os.environ`` at the edge)."""
        calls = _env_float(env, "INFERGUARD_LLM_MAX_CALLS_PER_HOUR", DEFAULT_MAX_CALLS_PER_HOUR)  # as BrainSettings
        share = _env_float(env, "INFERGUARD_LLM_PROACTIVE_SHARE", DEFAULT_PROACTIVE_SHARE)
        return cls(
            api_key=env.get("GMI_API_KEY") or None,
            base_url=env.get("GMI_BASE_URL") or DEFAULT_BASE_URL,
            model=env.get("GMI_MODEL") or DEFAULT_MODEL,
            timeout_s=_env_float(env, "INFERGUARD_LLM_TIMEOUT_SECONDS", 20.0) or 20.0,
            max_calls_per_hour=None if calls is None else int(calls),
            redact=_env_bool(env, "INFERGUARD_LLM_REDACT"),
            price_input_per_mtok=_env_float(env, "INFERGUARD_LLM_PRICE_INPUT_PER_MTOK", None),
            price_output_per_mtok=_env_float(env, "INFERGUARD_LLM_PRICE_OUTPUT_PER_MTOK", None),
            proactive_share=DEFAULT_PROACTIVE_SHARE if share is None else share,
        )


@dataclass(slots=True)
class Usage:
    """Counters since the client started; they only ever grow (Prometheus counters)."""

    calls: int = 0  # HTTP requests sent, retries included
    retries: int = 0
    cache_hits: int = 0
    failures: int = 0  # calls that ended in an LLMError, budget refusals included
    budget_refusals: int = 0  # calls not sent because the (share of the) hourly budget was spent
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None  # None until a price is set

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def add(self, other: Usage) -> Usage:
        costs = [c for c in (self.cost_usd, other.cost_usd) if c is not None]
        return Usage(calls=self.calls + other.calls, retries=self.retries + other.retries,
                     cache_hits=self.cache_hits + other.cache_hits, failures=self.failures + other.failures,
                     budget_refusals=self.budget_refusals + other.budget_refusals,
                     prompt_tokens=self.prompt_tokens + other.prompt_tokens,
                     completion_tokens=self.completion_tokens + other.completion_tokens,
                     cost_usd=sum(costs) if costs else None)


_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


def parse_json_object(text: str) -> dict[str, Any]:
    """The model's JSON object; tolerates a Markdown fence around it, nothing else."""
    m = _FENCE.match(text)
    body = m.group(1) if m else text
    try:
        value = json.loads(body)
    except ValueError:
        raise LLMError("invalid_json", "the model's answer is not JSON") from None
    if not isinstance(value, dict):
        raise LLMError("invalid_json", f"expected a JSON object, got {type(value).__name__}")
    return value


class LLMClient:
    """One client per process: it owns the HTTP pool, the cache, the budget and the usage totals."""

    def __init__(self, settings: LLMSettings, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, cache_size: int = 256) -> None:
        self.settings = settings
        self._usage: dict[str, Usage] = {p: Usage() for p in PURPOSES}
        self._clock = clock
        self._sleep = sleep
        self._cache: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._cache_size = cache_size
        self._sent: deque[tuple[float, str]] = deque()  # (when, purpose) of each call in the last hour
        self._json_schema_ok = True  # flips to JSON mode when the endpoint rejects response schemas
        self._client: AsyncOpenAI | None = None
        if self.configured:
            # Import the SDK now (~0.4 s), at start-up, not inside the event loop on the first call.
            import openai  # noqa: F401

    @property
    def configured(self) -> bool:
        return bool(self.settings.api_key)

    @property
    def totals(self) -> Usage:
        """Usage summed over purposes."""
        return self._usage["incident"].add(self._usage["proactive"])

    def usage(self) -> dict[str, Any]:
        """LLM usage for a metrics endpoint: monotonic counters per purpose, and the budget now.

        ``{"model", "incident": {calls, retries, cache_hits, failures, budget_refusals, prompt_tokens,
        completion_tokens, cost_usd}, "proactive": {...}, "total": {...}, "budget": {"max_calls_per_hour",
        "proactive_max_calls_per_hour", "calls_last_hour": {"incident", "proactive"}}}``. ``cost_usd`` is
        None until a price is set. Plain data, a fresh copy each call; safe to read from any task.
        """
        self._expire()
        last_hour = {p: sum(1 for _, q in self._sent if q == p) for p in PURPOSES}
        return {
            "model": self.settings.model,
            **{p: self._usage[p].as_dict() for p in PURPOSES},
            "total": self.totals.as_dict(),
            "budget": {"max_calls_per_hour": self.settings.max_calls_per_hour,
                       "proactive_max_calls_per_hour": self.proactive_limit(),
                       "calls_last_hour": last_hour},
        }

    def proactive_limit(self) -> int | None:
        """Proactive calls allowed in any hour (None: no limit)."""
        limit, share = self.settings.max_calls_per_hour, self.settings.proactive_share
        if share <= 0:
            return 0
        return None if limit is None else int(limit * share)

    def budget_left(self, purpose: Purpose) -> int | None:
        """Calls ``purpose`` may still send in the current sliding hour (None: no limit)."""
        self._expire()
        left: list[int] = []
        if self.settings.max_calls_per_hour is not None:
            left.append(self.settings.max_calls_per_hour - len(self._sent))
        cap = self.proactive_limit() if purpose == "proactive" else None
        if cap is not None:
            left.append(cap - sum(1 for _, p in self._sent if p == "proactive"))
        return max(0, min(left)) if left else None

    def _sdk(self) -> AsyncOpenAI:
        if self._client is None:
            import openai

            self._client = openai.AsyncOpenAI(
                api_key=self.settings.api_key,
                base_url=self.settings.base_url,
                timeout=self.settings.timeout_s,
                max_retries=0,  # retries are ours: bounded, counted, with an injected sleep
                # The SDK's own client class (its defaults, whichever HTTP library this SDK version is
                # built on); trust_env=False: never pick a proxy up from the environment implicitly.
                http_client=openai.DefaultAsyncHttpxClient(trust_env=False, timeout=self.settings.timeout_s),
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    def _expire(self) -> None:
        now = self._clock()
        while self._sent and now - self._sent[0][0] >= 3600.0:
            self._sent.popleft()

    def _budget_check(self, purpose: Purpose) -> None:
        if self.budget_left(purpose) != 0:
            return
        self._usage[purpose].budget_refusals += 1
        limit, cap = self.settings.max_calls_per_hour, self.proactive_limit()
        if purpose == "proactive" and cap == 0:
            raise LLMError("budget_exhausted", "proactive LLM calls are off (INFERGUARD_LLM_PROACTIVE_SHARE=0)")
        if purpose == "proactive" and cap is not None and (limit is None or len(self._sent) < limit):
            raise LLMError("budget_exhausted", f"proactive share: {cap} calls in the last hour")
        raise LLMError("budget_exhausted", f"{limit} calls in the last hour")

    def _account(self, response: Any, purpose: Purpose) -> None:
        u = getattr(response, "usage", None)
        if u is None:
            return
        p, c = int(getattr(u, "prompt_tokens", 0) or 0), int(getattr(u, "completion_tokens", 0) or 0)
        usage = self._usage[purpose]
        usage.prompt_tokens += p
        usage.completion_tokens += c
        pin, pout = self.settings.price_input_per_mtok, self.settings.price_output_per_mtok
        if pin is not None or pout is not None:
            usage.cost_usd = (usage.cost_usd or 0.0) + (p * (pin or 0.0) + c * (pout or 0.0)) / 1e6

    def _response_format(self, schema: dict[str, Any], name: str) -> dict[str, Any]:
        if self._json_schema_ok:
            return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": False}}
        return {"type": "json_object"}

    async def _send(self, messages: list[dict[str, str]], schema: dict[str, Any], name: str,
                    purpose: Purpose) -> Any:
        import openai

        usage = self._usage[purpose]
        attempt = 0
        while True:
            self._budget_check(purpose)
            self._sent.append((self._clock(), purpose))
            usage.calls += 1
            try:
                return await asyncio.wait_for(
                    # Plain role/content dicts and a dict response_format: the SDK's TypedDicts accept
                    # them at run time; mypy cannot match the overload.
                    self._sdk().chat.completions.create(  # type: ignore[call-overload]
                        model=self.settings.model,
                        messages=messages,
                        response_format=self._response_format(schema, name),
                        temperature=0,
                    ),
                    timeout=self.settings.timeout_s + 1.0,  # a guard over the SDK's own timeout
                )
            except (openai.APITimeoutError, TimeoutError):
                raise LLMError("timeout", f"no answer within {self.settings.timeout_s:g} s") from None
            except openai.BadRequestError:
                if self._json_schema_ok:
                    self._json_schema_ok = False  # endpoint without json_schema support: JSON mode
                    continue
                raise LLMError("http_status", "HTTP 400") from None
            except openai.AuthenticationError:
                raise LLMError("auth_failed", "HTTP 401") from None
            except openai.APIStatusError as exc:
                status = exc.status_code
                if (status == 429 or status >= 500) and attempt < self.settings.max_retries:
                    attempt += 1
                    usage.retries += 1
                    await self._sleep(self._backoff(exc, attempt))
                    continue
                reason = "rate_limited" if status == 429 else "server_error" if status >= 500 else "http_status"
                raise LLMError(reason, f"HTTP {status} after {attempt + 1} attempts") from None
            except openai.APIConnectionError:
                raise LLMError("connect", "cannot reach the LLM endpoint") from None

    @staticmethod
    def _backoff(exc: Any, attempt: int) -> float:
        header = exc.response.headers.get("retry-after") if getattr(exc, "response", None) else None
        try:
            if header is not None:
                return min(max(float(header), 0.0), MAX_BACKOFF_S)
        except ValueError:
            pass
        return float(min(0.5 * 2 ** (attempt - 1), MAX_BACKOFF_S))

    async def complete_json(self, *, system: str, user: str, schema: dict[str, Any], schema_name: str,
                            purpose: Purpose, cache_key: str | None = None) -> dict[str, Any]:
        """Ask for one JSON object valid against ``schema``; raise :class:`LLMError` otherwise.

        ``purpose`` decides whose share of the hourly budget the call spends and where it is counted."""
        if purpose not in PURPOSES:
            raise ValueError(f"purpose must be one of {PURPOSES}, not {purpose!r}")
        if not self.configured:
            raise LLMError("no_api_key", "GMI_API_KEY is not set")
        usage = self._usage[purpose]
        if cache_key is not None and cache_key in self._cache:
            self._cache.move_to_end(cache_key)
            usage.cache_hits += 1
            cached: dict[str, Any] = json.loads(json.dumps(self._cache[cache_key]))  # a copy to mutate
            return cached
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        try:
            response = await self._send(messages, schema, schema_name, purpose)
            self._account(response, purpose)
            value = self._read(response, schema)
        except LLMError:
            usage.failures += 1
            raise
        except Exception as exc:
            # A third-party SDK can fail in ways not listed above (a response it cannot parse, a new
            # error class): it is still only an LLM failure, never a crash of the caller.
            usage.failures += 1
            raise LLMError("sdk_error", type(exc).__name__) from None
        if cache_key is not None:
            self._cache[cache_key] = value
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        fresh: dict[str, Any] = json.loads(json.dumps(value))
        return fresh

    @staticmethod
    def _read(response: Any, schema: dict[str, Any]) -> dict[str, Any]:
        choices = getattr(response, "choices", None) or []
        if not choices:
            raise LLMError("empty_answer", "no choices in the response")
        choice = choices[0]
        message = choice.message
        if getattr(message, "refusal", None) or choice.finish_reason == "content_filter":
            raise LLMError("refusal", "the model refused to answer")
        content = message.content
        if not content or not content.strip():
            raise LLMError("empty_answer", "the model returned no content")
        value = parse_json_object(content)
        err = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(value))
        if err is not None:
            # Named by our schema's path and keyword only: the message quotes the model's own text.
            where = "/".join(str(p) for p in err.relative_schema_path)
            raise LLMError("invalid_answer", f"fails the answer schema at {where}")
        return value
