"""The real-vLLM proving ground: venv, tiny model, a managed vLLM server, a load generator, a recorder.

Used by the e2e tests and by ``scripts/record_vllm_timelines.py``. Everything here talks to a real
``vllm.entrypoints.openai.api_server`` process on loopback; nothing is faked. See shared/REAL_VLLM.md for
the facts (flags, start-up time, what overload looked like) this is built on.

Shaping load on 2 shared cores: vLLM's API server (one Python process) costs CPU per request and per
engine step. When engine steps are cheaper than that (a 128-wide model), requests queue inside the API
server, where /metrics cannot see them: the engine drains, and running/waiting/KV read 0 while clients
wait seconds. Hence the default tiny model is 1024 wide and 8 deep (scripts/build_tiny_model.py): the
engine stays the bottleneck and its own queue and KV cache fill, as they do in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gzip
import hashlib
import json
import os
import random
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache"))) / "inferguard"
BUILD_SCRIPT = REPO / "scripts" / "build_tiny_model.py"
ENV_SCRIPT = REPO / "scripts" / "vllm_env.sh"


class EngineError(RuntimeError):
    """The vLLM venv, the tiny model or the engine could not be prepared; the message carries the log."""


def _tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def ensure_venv() -> Path:
    """Return the vLLM venv's python, building the venv first if needed (cached, instant when built)."""
    proc = subprocess.run(["bash", str(ENV_SCRIPT)], capture_output=True, text=True, timeout=1800)
    out = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not out or not Path(out[-1]).exists():
        raise EngineError(f"{ENV_SCRIPT} failed (exit {proc.returncode}):\n{_tail(proc.stderr)}")
    return Path(out[-1])


def tiny_model(python: Path, *, head_dim_16: bool = False) -> Path:
    """Build (once per version of the build script) the tiny random-weight Llama; return its folder."""
    digest = hashlib.sha256(BUILD_SCRIPT.read_bytes()).hexdigest()[:12]
    out = CACHE / "tiny-llama" / (digest + ("-hd16" if head_dim_16 else ""))
    if (out / "inferguard-tiny.json").exists():
        return out
    # Build beside the target and rename, so a half-written model is never mistaken for a cached one.
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    cmd = [str(python), str(BUILD_SCRIPT), str(tmp)] + (["--head-dim-16"] if head_dim_16 else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise EngineError(f"building the tiny model failed (exit {proc.returncode}):\n{_tail(proc.stderr)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp.rename(out)
    except OSError:  # another process finished first: keep theirs
        subprocess.run(["rm", "-rf", str(tmp)], check=False)
    return out


def live_group_members(pgid: int) -> list[int]:
    """Processes of a process group that are still running (zombies awaiting their reaper do not count)."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited while we looked
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":  # fields after "(comm)": state, ppid, pgrp, ...
            alive.append(int(entry.name))
    return alive


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class VllmServer:
    """A real vLLM OpenAI server in its own process group. Always stopped on exit, even on failure."""

    def __init__(
        self,
        python: Path,
        model: Path,
        *,
        port: int | None = None,
        num_gpu_blocks: int | None = None,
        max_num_seqs: int | None = None,
        prefix_caching: bool = False,
        log_path: Path | None = None,
        ready_timeout: float = 600.0,  # start-up compiles for minutes on shared cores (217 s seen)
        extra_args: Sequence[str] = (),
    ) -> None:
        self.python = python
        self.model = model
        self.port = port or free_port()
        self.ready_timeout = ready_timeout
        self.log_path = log_path or Path(f"/tmp/inferguard-vllm-{self.port}.log")
        self.args: list[str] = [
            "--model", str(model), "--served-model-name", "tiny", "--host", "127.0.0.1",
            "--port", str(self.port), "--dtype", "bfloat16", "--max-model-len", "512", "--block-size", "32",
        ]  # fmt: skip
        if num_gpu_blocks is not None:
            self.args += ["--num-gpu-blocks-override", str(num_gpu_blocks)]
        if max_num_seqs is not None:
            self.args += ["--max-num-seqs", str(max_num_seqs)]
        if prefix_caching:
            self.args += ["--enable-prefix-caching"]
        self.args += list(extra_args)
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        return self.base_url + "/metrics"

    def log_tail(self, lines: int = 60) -> str:
        try:
            return _tail(self.log_path.read_text(errors="replace"), lines)
        except OSError:
            return "(no engine log)"

    def start(self) -> None:
        """Start the engine and block until /health answers 200; raise EngineError with the log if not."""
        if self._proc is not None and self._proc.poll() is None:
            raise EngineError(f"engine on port {self.port} is already running")
        env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1")
        for k in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):  # loopback only
            env.pop(k, None)
        self._log = self.log_path.open("ab")  # append: a restart keeps the first run's log
        self._log.write(f"\n=== start {' '.join(self.args)}\n".encode())
        self._log.flush()
        self._proc = subprocess.Popen(
            [str(self.python), "-m", "vllm.entrypoints.openai.api_server", *self.args],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, start_new_session=True,
        )  # fmt: skip
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.ready_timeout
        with httpx.Client(trust_env=False, timeout=2.0) as client:
            while True:
                code = self._proc.poll()
                if code is not None:
                    raise EngineError(f"vLLM exited with {code} before it was ready:\n{self.log_tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(self.base_url + "/health").status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise EngineError(f"vLLM not ready after {self.ready_timeout:.0f}s:\n{self.log_tail()}")
                time.sleep(1.0)

    def wait_exit(self, timeout: float) -> int | None:
        """The engine's exit code once it has exited by itself, or None if still running after timeout."""
        if self._proc is None:
            return None
        try:
            return self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _signal_group(self, sig: int) -> None:
        assert self._proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL the whole group (API server and engine core): the crash scenario."""
        if self._proc is None:
            return
        self._signal_group(signal.SIGKILL)
        self._proc.wait(timeout=30)
        self._close_log()

    def stop(self) -> None:
        """SIGTERM the group, then SIGKILL whatever is left after 20 s."""
        if self._proc is None:
            return
        self._signal_group(signal.SIGTERM)
        try:
            self._proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            self._proc.wait(timeout=30)
        # Children (engine core) may outlive the leader: sweep the group regardless.
        self._signal_group(signal.SIGKILL)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> VllmServer:
        self.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


# --- prompts ---------------------------------------------------------------------------------------

PromptMaker = Callable[[random.Random], str]


def vocab_words(model: Path) -> list[str]:
    """Whole words of the tiny tokenizer ('Ġword' entries): each ' word' is about one token."""
    vocab: dict[str, int] = json.loads((model / "tokenizer.json").read_text())["model"]["vocab"]
    words = sorted(t[1:] for t in vocab if t.startswith("Ġ") and t[1:].isalpha() and len(t) > 2)
    if len(words) < 20:
        raise EngineError(f"tokenizer at {model} has only {len(words)} whole words")
    return words


def random_words(words: Sequence[str], n: int) -> PromptMaker:
    """A fresh random prompt of n words per request (no shared prefix beyond chance)."""
    return lambda rng: " " + " ".join(rng.choice(words) for _ in range(n))


def shared_prefix(words: Sequence[str], prefix_n: int, suffix_n: int, seed: int = 7) -> PromptMaker:
    """One fixed long prefix for every request plus a short random suffix: prefix-cache hits."""
    prefix = " " + " ".join(random.Random(seed).choice(words) for _ in range(prefix_n))
    return lambda rng: prefix + " " + " ".join(rng.choice(words) for _ in range(suffix_n))


# --- load ------------------------------------------------------------------------------------------


@dataclass
class LoadResult:
    ok: int = 0
    failed: int = 0
    cancelled: int = 0  # in flight when the time bound hit; the client disconnect aborts them in vLLM
    errors: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        lat = sorted(self.latencies)
        return {
            "ok": self.ok,
            "failed": self.failed,
            "cancelled": self.cancelled,
            "errors": dict(self.errors),
            "latency_p50_s": round(lat[len(lat) // 2], 3) if lat else None,
            "latency_max_s": round(lat[-1], 3) if lat else None,
        }


async def run_load(
    base_url: str,
    *,
    clients: int,
    max_tokens: int,
    prompt: PromptMaker,
    duration_s: float,
    max_requests: int | None = None,
    seed: int = 0,
    request_timeout: float = 600.0,
    stop: asyncio.Event | None = None,
    stop_new: asyncio.Event | None = None,
) -> LoadResult:
    """N concurrent clients posting /v1/completions until duration_s (or max_requests) is reached.

    Stops by itself (or when ``stop`` is set): at the time bound the in-flight requests are cancelled
    (the engine aborts them when the connection closes), so a phase's load does not leak into the next.
    Once ``stop_new`` is set, clients send nothing new and return when their request in flight is done:
    the engine drains its queue as it would when traffic falls away.
    """
    result = LoadResult()
    budget = [max_requests if max_requests is not None else -1]
    limits = httpx.Limits(max_connections=clients + 4, max_keepalive_connections=clients + 4)

    async def client(i: int, http: httpx.AsyncClient) -> None:
        rng = random.Random(seed * 1000 + i)
        while budget[0] != 0 and not (stop_new is not None and stop_new.is_set()):
            if budget[0] > 0:
                budget[0] -= 1
            body = {"model": "tiny", "prompt": prompt(rng), "max_tokens": max_tokens, "ignore_eos": True}
            t0 = time.monotonic()
            try:
                r = await http.post(base_url + "/v1/completions", json=body)
            except httpx.HTTPError as exc:
                result.failed += 1
                result.errors[type(exc).__name__] += 1
                await asyncio.sleep(0.5)  # an engine that is down should not be hammered in a tight loop
                continue
            if r.status_code == 200:
                result.ok += 1
                result.latencies.append(time.monotonic() - t0)
            else:
                result.failed += 1
                result.errors[f"http_{r.status_code}"] += 1
                await asyncio.sleep(0.5)

    async with httpx.AsyncClient(trust_env=False, timeout=request_timeout, limits=limits) as http:
        tasks: set[asyncio.Task[Any]] = {asyncio.create_task(client(i, http)) for i in range(clients)}
        stopper = asyncio.create_task(stop.wait()) if stop is not None else None
        deadline = time.monotonic() + duration_s
        pending: set[asyncio.Task[Any]] = set(tasks)
        while pending and time.monotonic() < deadline and not (stop is not None and stop.is_set()):
            watch = pending | ({stopper} if stopper is not None else set())
            _, rest = await asyncio.wait(watch, timeout=deadline - time.monotonic(), return_when="FIRST_COMPLETED")
            pending = rest & tasks
        for t in pending:
            t.cancel()
        if stopper is not None:
            stopper.cancel()
        result.cancelled = len(pending)
        await asyncio.gather(*pending, return_exceptions=True)
        for t in tasks - pending:
            exc = t.exception()
            if exc is not None:
                raise exc  # a bug in the generator itself: surface it
    return result


# --- recorder --------------------------------------------------------------------------------------


def _reason(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    cause: BaseException | None = exc
    while cause is not None:  # httpx wraps the OSError; ECONNREFUSED means nothing listens on the port
        if isinstance(cause, ConnectionRefusedError) or getattr(cause, "errno", None) == errno.ECONNREFUSED:
            return "refused"
        cause = cause.__cause__ or cause.__context__
    return "connect"


async def record(
    url: str,
    out: Path,
    *,
    interval: float,
    stop: asyncio.Event,
    clock: Callable[[], float] = time.time,
    timeout: float = 5.0,
) -> int:
    """GET url every interval seconds (fixed rate, no drift) and append one JSON line per scrape to out.

    Lines follow inferguard's timeline format (gzip when out ends in .gz); ``timeout`` matches the
    daemon's default scrape timeout. Returns the number of lines.
    """
    n = 0
    t0 = time.monotonic()
    with gzip.open(out, "wt", encoding="utf-8") if out.suffix == ".gz" else out.open("w") as fh:
        async with httpx.AsyncClient(trust_env=False, timeout=timeout) as http:
            while not stop.is_set():
                ts = clock()
                line: dict[str, Any] = {"ts": round(ts, 3), "target": url}
                try:
                    # httpx's timeout is per socket operation; a server trickling bytes could hold a
                    # scrape far longer, so bound the whole exchange like the daemon does.
                    r = await asyncio.wait_for(http.get(url), timeout)
                    if r.status_code == 200:
                        line |= {"status": 200, "metrics": r.text}
                    else:
                        line |= {"status": r.status_code, "error": "http_status"}
                except TimeoutError:
                    line["error"] = "timeout"
                except httpx.HTTPError as exc:
                    line["error"] = _reason(exc)
                fh.write(json.dumps(line) + "\n")
                fh.flush()
                n += 1
                # Next slot on the fixed grid; a slow scrape skips slots instead of bursting to catch up.
                elapsed = time.monotonic() - t0
                wait = (int(elapsed // interval) + 1) * interval - elapsed
                if wait > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), wait)
    return n


# --- scenario phases -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    clients: int
    max_tokens: int
    prompt: str  # "words:N" (random words) or "prefix:P:S" (shared P-word prefix, random S-word suffix)

    def maker(self, words: Sequence[str]) -> PromptMaker:
        kind, *nums = self.prompt.split(":")
        n = [int(x) for x in nums]
        if kind == "words" and len(n) == 1:
            return random_words(words, n[0])
        if kind == "prefix" and len(n) == 2:
            return shared_prefix(words, n[0], n[1])
        raise ValueError(f"prompt spec {self.prompt!r}: expected 'words:N' or 'prefix:P:S'")


@dataclass(frozen=True)
class Phase:
    name: str
    seconds: float
    load: Load | None = None
    kill: bool = False  # kill -9 the engine 2 s into this phase's load; the phase lasts until it is back
    # After ``seconds`` stop sending new requests and let those in flight finish (at most drain_s): a
    # "<name>_drain" phase marks the engine working off its queue.
    drain_s: float = 0.0


@dataclass
class PhaseMark:
    name: str
    start: float
    end: float

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "start": round(self.start, 3), "end": round(self.end, 3)}


async def run_phases(
    server: VllmServer,
    phases: Sequence[Phase],
    words: Sequence[str],
    *,
    clock: Callable[[], float] = time.time,
    log: Callable[[str], None] = lambda _msg: None,
) -> tuple[list[PhaseMark], dict[str, Any]]:
    """Drive the phases against a running server; return the real phase boundaries and load results."""
    marks: list[PhaseMark] = []
    loads: dict[str, Any] = {}
    for i, ph in enumerate(phases):
        log(f"{ph.name} ({ph.seconds:.0f}s) load={ph.load}")
        back = asyncio.Event()  # set when a killed engine answers /health again
        load_task = None
        stop_new = asyncio.Event()
        if ph.load is not None:
            load_task = asyncio.create_task(run_load(
                server.base_url, clients=ph.load.clients, max_tokens=ph.load.max_tokens,
                prompt=ph.load.maker(words), duration_s=(ph.seconds or 3600.0) + ph.drain_s, seed=i,
                stop=back if ph.kill else None, stop_new=stop_new if ph.drain_s else None,
            ))  # fmt: skip
        start = clock()
        if ph.kill:
            await asyncio.sleep(2.0)  # requests are in flight when the engine dies
            await asyncio.to_thread(server.kill)
            start = clock()
            if marks:
                marks[-1].end = start
            try:
                await asyncio.to_thread(server.start)
            finally:
                back.set()
        elif ph.seconds:
            await asyncio.sleep(ph.seconds)
        if ph.drain_s and load_task is not None:
            stop_new.set()
            marks.append(PhaseMark(ph.name, start, clock()))
            start, ph = clock(), Phase(ph.name + "_drain", 0, ph.load)
        if load_task is not None and ph.load is not None:
            loads[ph.name] = {**ph.load.__dict__, **(await load_task).as_dict()}
        marks.append(PhaseMark(ph.name, start, clock()))
        log(f"  -> {loads.get(ph.name)}")
    return marks, loads
