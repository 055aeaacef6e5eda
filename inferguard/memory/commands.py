"""Two ways to send Redis commands: the ``redis`` package's asyncio client (TCP) and the ``upstash-redis``
async client (Upstash's REST protocol). The remote state store speaks only this small interface, so
Redis and Upstash Redis run the very same commands and Lua script. Every failure is typed here."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

import httpx

from inferguard.errors import ConfigError, MemoryBackendError


class Commands(Protocol):
    name: str

    async def run(self, *command: Any) -> Any: ...

    async def batch(self, commands: list[list[Any]]) -> list[Any]: ...

    async def aclose(self) -> None: ...


class RedisCommands:
    """``redis.asyncio`` over TCP (``redis://``, ``rediss://``, ``unix://``)."""

    name = "redis"

    def __init__(self, url: str, *, timeout_s: float = 2.0) -> None:
        import redis.asyncio

        self.timeout_s = timeout_s
        try:
            self._client = redis.asyncio.Redis.from_url(
                url, decode_responses=True, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
                retry_on_timeout=False, health_check_interval=0)
        except ValueError as exc:
            raise ConfigError("INFERGUARD_REDIS_URL", f"not a usable Redis URL: {str(exc).split(':')[0]}") from None

    async def _call(self, fn: Any) -> Any:
        import redis.exceptions

        try:
            async with asyncio.timeout(self.timeout_s * 2):
                return await fn()
        except redis.exceptions.AuthenticationError:
            raise ConfigError("INFERGUARD_REDIS_URL", "Redis refused the credentials (missing or wrong password "
                              "in the URL)") from None
        except redis.exceptions.ResponseError as exc:
            if "NOAUTH" in str(exc) or "WRONGPASS" in str(exc):
                raise ConfigError("INFERGUARD_REDIS_URL", "Redis wants a password the URL does not give") from None
            raise MemoryBackendError(f"redis: {str(exc)[:200]}") from None
        except TimeoutError:
            raise MemoryBackendError("redis: timed out") from None
        except (redis.exceptions.RedisError, OSError) as exc:
            raise MemoryBackendError(f"redis: {type(exc).__name__}: {str(exc)[:200]}") from None

    async def run(self, *command: Any) -> Any:
        return await self._call(lambda: self._client.execute_command(*command))  # type: ignore[no-untyped-call]

    async def batch(self, commands: list[list[Any]]) -> list[Any]:
        async def go() -> list[Any]:
            pipe = self._client.pipeline(transaction=False)
            for c in commands:
                pipe.execute_command(*c)
            return list(await pipe.execute(raise_on_error=True))
        result: list[Any] = await self._call(go)
        return result

    async def aclose(self) -> None:
        await self._client.aclose()


class UpstashCommands:
    """``upstash_redis.asyncio.Redis``: each command (or pipeline) is one HTTPS request to Upstash."""

    name = "upstash"

    def __init__(self, url: str, token: str, *, timeout_s: float = 2.0) -> None:
        from upstash_redis.asyncio import Redis

        self.timeout_s = timeout_s
        # No SDK retries (the spool retries) and no telemetry headers.
        self._client = Redis(url, token, rest_retries=0, allow_telemetry=False)

    async def _call(self, fn: Any) -> Any:
        from upstash_redis.errors import UpstashError

        try:
            async with asyncio.timeout(self.timeout_s):
                return await fn()
        except UpstashError as exc:
            text = str(exc)
            if "unauthori" in text.lower() or "WRONGPASS" in text or "token" in text.lower():
                raise ConfigError("UPSTASH_REDIS_REST_TOKEN", "Upstash Redis refused the token") from None
            raise MemoryBackendError(f"upstash redis: {text[:200]}") from None
        except TimeoutError:
            raise MemoryBackendError("upstash redis: timed out") from None
        except (httpx.HTTPError, OSError, ValueError, KeyError) as exc:
            raise MemoryBackendError(f"upstash redis: {type(exc).__name__}: {str(exc)[:200]}") from None

    async def run(self, *command: Any) -> Any:
        return await self._call(lambda: self._client.execute(list(command)))

    async def batch(self, commands: list[list[Any]]) -> list[Any]:
        async def go() -> list[Any]:
            pipe = self._client.pipeline()
            for c in commands:
                pipe.execute(list(c))
            return list(await pipe.exec())
        result: list[Any] = await self._call(go)
        return result

    async def aclose(self) -> None:
        await self._client.close()
