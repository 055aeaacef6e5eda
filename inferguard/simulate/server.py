"""The simulator's HTTP face: an OpenAI-compatible engine (completions, chat, streaming) with /metrics.

Target 0 answers at the root (``/metrics``, ``/v1/...``); target ``i`` of ``--targets N`` at ``/t/<i>/...``.
Each target has its own queueing model and scenario. Simulated time runs at ``speed`` times the injected
clock; models advance lazily on every request and from one tick task, in fixed quanta, so what a scrape
sees does not depend on how often anything was scraped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route

from inferguard.errors import ConfigError
from inferguard.simulate.dialects import CONTENT_TYPE, DIALECTS, PageRenderer
from inferguard.simulate.model import EngineConfig, EngineDownError, EngineModel, SimRequest
from inferguard.simulate.scenarios import get_scenario

MAX_TARGETS = 10_000
_VOCAB = ("the", "engine", "serves", "tokens", "while", "cache", "blocks", "fill", "and", "queue", "drains",
          "slowly", "under", "load", "each", "step", "decodes", "one", "more", "word")
_CATCH_UP_S = 600.0  # a model that fell further behind than this skips ahead instead of simulating


@dataclass(slots=True)
class SimTarget:
    index: int
    model: EngineModel
    renderer: PageRenderer


def _error(status: int, message: str, kind: str = "BadRequestError") -> JSONResponse:
    # the OpenAI error envelope, as vLLM answers
    return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": status}}, status)


def _down() -> Response:
    return PlainTextResponse("engine unavailable (simulated engine_crash)\n", status_code=503)


class Simulator:
    """N simulated engines behind one HTTP server. Use ``async with Simulator(...) as sim:`` or start/stop."""

    def __init__(
        self,
        *,
        targets: int = 1,
        dialect: str = "vllm-v1",
        scenario: str = "healthy",
        model: str = "sim/llama-3-8b-instruct",
        seed: int = 0,
        speed: float = 1.0,
        host: str = "127.0.0.1",
        port: int = 0,
        engine: EngineConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
        epoch: float | None = None,
        tick_s: float = 1.0,
    ) -> None:
        if not isinstance(targets, int) or not 1 <= targets <= MAX_TARGETS:
            raise ConfigError("targets", f"must be an integer from 1 to {MAX_TARGETS}, got {targets!r}")
        if dialect not in DIALECTS:
            raise ConfigError("dialect", f"unknown dialect {dialect!r}; expected one of {', '.join(DIALECTS)}")
        if not (isinstance(speed, int | float) and math.isfinite(speed) and 0 < speed <= 1000):
            raise ConfigError("speed", f"must be a number in (0, 1000], got {speed!r}")
        if not model or any(c in model for c in '"\\\n'):
            raise ConfigError("model", f"must be a non-empty name without quotes, backslashes or newlines: {model!r}")
        if not 0 <= port <= 65535:
            raise ConfigError("port", f"must be 0-65535, got {port!r}")
        if not (tick_s > 0 and math.isfinite(tick_s)):
            raise ConfigError("tick_s", f"must be a positive number, got {tick_s!r}")
        first = get_scenario(scenario)
        if engine is None:
            # coarser quanta keep 1,000 targets cheap; one target keeps 50 ms timing
            engine = EngineConfig(quantum_s=0.05 if targets <= 10 else 0.2)
        self.dialect = dialect
        self.model_name = model
        self.speed = float(speed)
        self.host = host
        self.port = port
        self.engine = engine
        self._clock = clock
        self._c0 = clock()
        # simulated time is Unix time so _created timestamps look like the real thing
        self._epoch = time.time() if epoch is None else epoch
        self._tick_s = tick_s
        self.targets = [
            SimTarget(i, EngineModel(engine, first, seed=seed * 100_003 + i, start=self._epoch),
                      PageRenderer(dialect, model, i, seed))
            for i in range(targets)
        ]
        self._server: uvicorn.Server | None = None
        self._serve_task: asyncio.Task[None] | None = None
        self._tick_task: asyncio.Task[None] | None = None
        self.app = self._build_app()

    # -- time and state -----------------------------------------------------------------------------

    def sim_now(self) -> float:
        return self._epoch + (self._clock() - self._c0) * self.speed

    def sync(self, target: SimTarget) -> EngineModel:
        m = target.model
        m.advance_to(self.sim_now(), max_quanta=int(_CATCH_UP_S / m.config.quantum_s))
        return m

    def target(self, index: int) -> SimTarget:
        if not 0 <= index < len(self.targets):
            raise ConfigError("target", f"no target {index}; this simulator serves 0..{len(self.targets) - 1}")
        return self.targets[index]

    def set_scenario(self, name: str, target: int | None = None) -> list[int]:
        """Switch one target (or all, when ``target`` is None) to scenario ``name``."""
        scenario = get_scenario(name)
        chosen = self.targets if target is None else [self.target(target)]
        for t in chosen:
            self.sync(t)
            t.model.set_scenario(scenario)
        return [t.index for t in chosen]

    def state(self) -> dict[str, Any]:
        return {
            "dialect": self.dialect, "model": self.model_name, "speed": self.speed,
            "sim_time": self.sim_now(), "targets": [{"target": t.index, **self.sync(t).state()} for t in self.targets],
        }

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def target_url(self, index: int) -> str:
        """Base URL of target ``index`` (append ``/metrics`` or ``/v1``)."""
        self.target(index)
        return self.url if index == 0 else f"{self.url}/t/{index}"

    # -- lifecycle ----------------------------------------------------------------------------------

    async def start(self) -> None:
        # bind here, not in uvicorn: a busy port becomes a ConfigError instead of uvicorn's sys.exit
        # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted sockets only when the listening
        # socket says TCP; without it Nagle and delayed ACKs add ~40 ms to every /metrics response
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise ConfigError("port", f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}") from None
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=2)
        server = uvicorn.Server(config)
        self._server = server
        self._serve_task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if self._serve_task.done():
                sock.close()
                raise ConfigError("port", f"cannot serve on {self.url}: {self._serve_task.exception()!r}")
            await asyncio.sleep(0.01)
        self._tick_task = asyncio.create_task(self._tick())

    async def stop(self) -> None:
        if self._tick_task is not None:
            self._tick_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tick_task
            self._tick_task = None
        if self._server is not None and self._serve_task is not None:
            self._server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._serve_task, timeout=10)
        self._server = None
        self._serve_task = None

    async def wait_closed(self) -> None:
        """Return when the server stops (SIGINT/SIGTERM are handled by uvicorn)."""
        if self._serve_task is not None:
            await self._serve_task

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self._tick_s)
            for t in self.targets:
                self.sync(t)
                await asyncio.sleep(0)  # stay responsive while 1,000 models catch up

    # -- HTTP ---------------------------------------------------------------------------------------

    def _build_app(self) -> Starlette:
        routes = [
            Route("/metrics", self._metrics, methods=["GET"]),
            Route("/health", self._health, methods=["GET"]),
            Route("/v1/models", self._models, methods=["GET"]),
            Route("/v1/completions", self._completions, methods=["POST"]),
            Route("/v1/chat/completions", self._chat, methods=["POST"]),
            Route("/admin/scenario", self._admin_scenario, methods=["POST"]),
            Route("/admin/state", self._admin_state, methods=["GET"]),
        ]
        return Starlette(routes=[Mount("/t/{target:int}", routes=routes), *routes])

    def _target_of(self, request: Request) -> SimTarget | None:
        index = request.path_params.get("target", 0)
        return self.targets[index] if 0 <= index < len(self.targets) else None

    async def _metrics(self, request: Request) -> Response:
        t = self._target_of(request)
        if t is None:
            return PlainTextResponse("no such target\n", status_code=404)
        m = self.sync(t)
        if not m.up:
            return _down()
        return Response(t.renderer.render(m), media_type=CONTENT_TYPE)

    async def _health(self, request: Request) -> Response:
        t = self._target_of(request)
        if t is None:
            return PlainTextResponse("no such target\n", status_code=404)
        return Response(status_code=200) if self.sync(t).up else _down()

    async def _models(self, request: Request) -> Response:
        t = self._target_of(request)
        if t is None:
            return _error(404, "no such target", "NotFoundError")
        if not self.sync(t).up:
            return _down()
        return JSONResponse({"object": "list", "data": [{
            "id": self.model_name, "object": "model", "created": int(self._epoch), "owned_by": "vllm",
            "root": self.model_name, "parent": None, "max_model_len": self.engine.max_model_len}]})

    async def _admin_scenario(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return _error(400, f"body is not JSON: {exc}")
        if not isinstance(body, dict) or not isinstance(body.get("scenario"), str):
            return _error(400, 'expected a JSON object {"scenario": "<name>"}')
        chosen: int | None
        if "target" in request.path_params:
            chosen = request.path_params["target"]
        else:
            raw = body.get("target", 0)
            if raw == "all":
                chosen = None
            elif isinstance(raw, int) and not isinstance(raw, bool):
                chosen = raw
            else:
                return _error(400, f'"target" must be an integer or "all", got {raw!r}')
        try:
            changed = self.set_scenario(body["scenario"], chosen)
        except ConfigError as exc:
            return _error(400 if exc.setting == "scenario" else 404, str(exc))
        return JSONResponse({"scenario": body["scenario"], "targets": changed})

    async def _admin_state(self, request: Request) -> Response:
        if "target" in request.path_params:
            t = self._target_of(request)
            if t is None:
                return _error(404, "no such target", "NotFoundError")
            return JSONResponse({"target": t.index, **self.sync(t).state()})
        return JSONResponse(self.state())

    async def _read_request(
        self, request: Request, chat: bool
    ) -> tuple[SimTarget, dict[str, Any], int, int] | Response:
        t = self._target_of(request)
        if t is None:
            return _error(404, "no such target", "NotFoundError")
        try:
            body = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return _error(400, f"body is not JSON: {exc}")
        if not isinstance(body, dict):
            return _error(400, "body must be a JSON object")
        if body.get("model") != self.model_name:
            return _error(404, f"The model `{body.get('model')}` does not exist.", "NotFoundError")
        max_tokens = body.get("max_completion_tokens", body.get("max_tokens", 16))
        if max_tokens is None:
            max_tokens = 16
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            return _error(400, f"max_tokens must be a positive integer, got {max_tokens!r}")
        if chat:
            messages = body.get("messages")
            if not isinstance(messages, list) or not messages or not all(
                isinstance(m, dict) and isinstance(m.get("content", ""), str) for m in messages
            ):
                return _error(400, "messages must be a non-empty list of {role, content} objects")
            text = " ".join(str(m.get("content", "")) for m in messages)
        else:
            prompt = body.get("prompt")
            if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
                prompt = prompt[0]
            if not isinstance(prompt, str):
                return _error(400, "prompt must be a string (batched prompts are not simulated)")
            text = prompt
        if body.get("n", 1) != 1:
            return _error(400, "only n=1 is simulated")
        # about four characters per token, as with common BPE vocabularies
        return t, body, max(1, len(text) // 4 + 1), max_tokens

    async def _completions(self, request: Request) -> Response:
        return await self._generate(request, chat=False)

    async def _chat(self, request: Request) -> Response:
        return await self._generate(request, chat=True)

    async def _generate(self, request: Request, chat: bool) -> Response:
        parsed = await self._read_request(request, chat)
        if isinstance(parsed, Response):
            return parsed
        t, body, prompt_tokens, max_tokens = parsed
        m = self.sync(t)
        try:
            req = m.submit(prompt_tokens, max_tokens, now=self.sim_now())
        except EngineDownError:
            return _down()
        rid = f"{'chatcmpl' if chat else 'cmpl'}-sim{t.index}x{req.rid}"
        created = int(self.sim_now())
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            stream = self._stream(t, req, rid, created, chat, include_usage)
            return StreamingResponse(stream, media_type="text/event-stream")
        async for _ in self._tokens(t, req):
            pass
        if req.finish_reason not in ("length", "stop"):
            return _error(503 if req.finish_reason == "abort" else 500,
                          f"request failed in the engine ({req.finish_reason})", "InternalServerError")
        text = self._text(req, 0, req.generated)
        usage = {"prompt_tokens": req.prompt_tokens, "completion_tokens": req.generated,
                 "total_tokens": req.prompt_tokens + req.generated}
        if chat:
            choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": text},
                                      "logprobs": None, "finish_reason": req.finish_reason}
            return JSONResponse({"id": rid, "object": "chat.completion", "created": created,
                                 "model": self.model_name, "choices": [choice], "usage": usage})
        choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": req.finish_reason,
                  "stop_reason": None}
        return JSONResponse({"id": rid, "object": "text_completion", "created": created,
                             "model": self.model_name, "choices": [choice], "usage": usage})

    @staticmethod
    def _text(req: SimRequest, start: int, end: int) -> str:
        return "".join(" " + _VOCAB[(req.rid * 7 + i) % len(_VOCAB)] for i in range(start, end))

    async def _tokens(self, t: SimTarget, req: SimRequest) -> AsyncIterator[int]:
        """Yield the running token count as simulated time reaches each token; end when the request ends."""
        poll = min(0.2, max(0.005, t.model.config.quantum_s / self.speed))
        sent = 0
        while True:
            self.sync(t)
            now = self.sim_now()
            ready = sent
            while ready < len(req.token_times) and req.token_times[ready] <= now:
                ready += 1
            if ready > sent:
                sent = ready
                yield sent
            if req.done and (sent >= len(req.token_times) or req.finish_reason == "abort"):
                return
            await asyncio.sleep(poll)

    async def _stream(self, t: SimTarget, req: SimRequest, rid: str, created: int, chat: bool,
                      include_usage: bool) -> AsyncIterator[str]:
        def chunk(delta: str | None, finish: str | None, role: bool = False) -> str:
            if chat:
                d: dict[str, Any] = {"role": "assistant", "content": ""} if role else {"content": delta}
                if finish is not None and not role:
                    d = {}
                payload: dict[str, Any] = {
                    "id": rid, "object": "chat.completion.chunk", "created": created, "model": self.model_name,
                    "choices": [{"index": 0, "delta": d, "logprobs": None, "finish_reason": finish}]}
            else:
                payload = {"id": rid, "object": "text_completion", "created": created, "model": self.model_name,
                           "choices": [{"index": 0, "text": delta or "", "logprobs": None,
                                        "finish_reason": finish, "stop_reason": None}]}
            if include_usage:
                payload["usage"] = None
            return f"data: {json.dumps(payload)}\n\n"

        if chat:
            yield chunk(None, None, role=True)
        sent = 0
        async for ready in self._tokens(t, req):
            yield chunk(self._text(req, sent, ready), None)
            sent = ready
        if req.finish_reason not in ("length", "stop"):
            err = {"error": {"message": f"request failed in the engine ({req.finish_reason})",
                             "type": "InternalServerError", "param": None, "code": 500}}
            yield f"data: {json.dumps(err)}\n\n"
            return
        yield chunk("" if not chat else None, req.finish_reason)
        if include_usage:
            usage: dict[str, Any] = {"id": rid, "object": "chat.completion.chunk" if chat else "text_completion",
                     "created": created, "model": self.model_name, "choices": [],
                     "usage": {"prompt_tokens": req.prompt_tokens, "completion_tokens": req.generated,
                               "total_tokens": req.prompt_tokens + req.generated}}
            yield f"data: {json.dumps(usage)}\n\n"
        yield "data: [DONE]\n\n"


async def serve_simulator(
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    dialect: str = "vllm-v1",
    scenario: str = "healthy",
    targets: int = 1,
    model: str = "sim/llama-3-8b-instruct",
    seed: int = 0,
    speed: float = 1.0,
    engine: EngineConfig | None = None,
    ready: Callable[[Simulator], None] | None = None,
) -> None:
    """Run a simulator until the server stops (SIGINT/SIGTERM). ``ready`` is called once it listens."""
    sim = Simulator(targets=targets, dialect=dialect, scenario=scenario, model=model, seed=seed, speed=speed,
                    host=host, port=port, engine=engine)
    await sim.start()
    try:
        if ready is not None:
            ready(sim)
        await sim.wait_closed()
    finally:
        await sim.stop()

