"""``rlm-agent``: the brain on its own — serve it over HTTP, advise or investigate on payload files, run
the evals. Settings come from the environment and ``.env`` (the environment wins), like ``inferguard``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import textwrap
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .dotenv import environment
from .errors import PayloadInvalid, RlmAgentError
from .llm import LLMClient, LLMSettings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8377
MAX_INPUT_BYTES = 64 << 20  # a file of exported payloads; one payload is at most 1 MiB on the wire

EPILOG = """\
settings (environment variables, or NAME=value lines in the --env-file):
  GMI_API_KEY                             LLM API key; unset: deterministic rules only
  GMI_BASE_URL                            OpenAI-compatible endpoint (default https://api.gmi-serving.com/v1)
  GMI_MODEL                               model name (default openai/gpt-oss-120b)
  INFERGUARD_LLM_TIMEOUT_SECONDS          per LLM call (default 20)
  INFERGUARD_LLM_MAX_CALLS_PER_HOUR       LLM call budget per sliding hour (default 60)
  INFERGUARD_LLM_PROACTIVE_SHARE          share of the budget proactive calls may use, 0 = off (default 0.25)
  INFERGUARD_LLM_REDACT                   hide hostnames, IPs and model names from the LLM (default false)
  INFERGUARD_LLM_PRICE_INPUT_PER_MTOK     USD per million prompt tokens (default unset: no cost)
  INFERGUARD_LLM_PRICE_OUTPUT_PER_MTOK    USD per million completion tokens

exit codes: 0 done; 1 an eval case failed; 2 bad arguments, settings or input.
docs: docs/brain.md"""


class _Help(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown where there is one to show: not for flags, nor for options whose help says it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False) or "(default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("inferguard")
    except PackageNotFoundError:
        return "unknown"


def _settings(args: argparse.Namespace) -> tuple[LLMSettings, str]:
    given = args.env_file is not None
    env, source = environment(os.environ, Path(args.env_file or ".env"), required=given)
    return LLMSettings.from_env(env), source


def _endpoint(url: str) -> str:
    """The LLM endpoint without credentials or query (a proxy URL may carry a token)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def describe_llm(settings: LLMSettings) -> str:
    if not settings.api_key:
        return "LLM off (GMI_API_KEY is not set): deterministic rules only"
    calls = settings.max_calls_per_hour
    budget = "no call limit" if calls is None else f"at most {calls} calls/hour"
    share = "proactive calls off" if settings.proactive_share <= 0 else \
        f"{settings.proactive_share:g} of it for proactive calls"
    return f"LLM on: {settings.model} at {_endpoint(settings.base_url)}, {budget}, {share}"


def _listen(host: str, port: int) -> socket.socket:
    """Bind before serving, so a taken port is one line naming the address, not a server traceback."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise RlmAgentError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise RlmAgentError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .server import create_app

    settings, source = _settings(args)
    sock = _listen(args.host, args.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in str(host) else str(host)
    print(f"rlm-agent {_version()}: serving the brain on http://{shown}:{port} "
          f"(POST /v1/advise, POST /v1/investigate, GET /healthz); {describe_llm(settings)}; "
          f"settings from {source}", file=sys.stderr, flush=True)
    llm = LLMClient(settings) if settings.api_key else None
    config = uvicorn.Config(create_app(llm), log_level=args.log_level, lifespan="on", ws="none")
    uvicorn.Server(config).run(sockets=[sock])
    return 0


def _eval(args: argparse.Namespace) -> int:
    from .evals.runner import load_cases, run_double, run_live, run_rules, table

    cases = load_cases(Path(args.cases) if args.cases else None)
    results = run_rules(cases)
    usage = None
    if args.double:
        results += asyncio.run(run_double(cases))
    if args.live:
        settings, _ = _settings(args)
        if not settings.api_key:
            print("rlm-agent eval --live: GMI_API_KEY is not set", file=sys.stderr)
            return 2
        live, usage = asyncio.run(run_live(cases, settings))
        results += live
    print(table(results))
    if usage is not None:
        print(f"\nlive usage: {json.dumps(usage)}")
    if args.json:
        rows = [{**asdict(r), "passed": r.passed} for r in results]
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return 0 if all(r.passed for r in results if r.mode != "llm-live") else 1


def _parse(text: str, where: str) -> list[tuple[str, Any]]:
    """One payload object, a JSON array of them, or JSON Lines (one payload per line)."""
    try:
        value = json.loads(text)
    except ValueError:
        value = None
        lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
        if len(lines) < 2:
            raise PayloadInvalid(f"{where} is not JSON (one payload, a JSON array, or JSON Lines)") from None
        out = []
        for n, line in lines:
            try:
                out.append((f"{where}:{n}", json.loads(line)))
            except ValueError:
                raise PayloadInvalid(f"{where}:{n} is not a JSON object") from None
        return out
    if isinstance(value, list):
        return [(f"{where}[{i}]", item) for i, item in enumerate(value)]
    return [(where, value)]


def _read(path: Path) -> str:
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:
        raise RlmAgentError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    if len(raw) > MAX_INPUT_BYTES:
        raise RlmAgentError(f"{path} is larger than {MAX_INPUT_BYTES >> 20} MiB")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadInvalid(f"{path} is not UTF-8 text (invalid byte at offset {exc.start})") from None


def load_payloads(spec: str) -> list[tuple[str, Any]]:
    """Payloads from a file, a directory of ``*.json`` files (one export per file), or ``-`` (stdin)."""
    if spec == "-":
        return _parse(sys.stdin.read(MAX_INPUT_BYTES), "<stdin>")
    path = Path(spec)
    if path.is_dir():
        files = sorted(path.glob("*.json"))
        if not files:
            raise RlmAgentError(f"{path} holds no *.json payload files")
        return [item for f in files for item in _parse(_read(f), str(f))]
    return _parse(_read(path), str(path))


def _one(args: argparse.Namespace) -> int:
    from .agent import aadvise, ainvestigate

    payloads = load_payloads(args.file)
    settings, _ = _settings(args)
    llm = LLMClient(settings) if settings.api_key else None

    async def go() -> list[dict[str, Any]]:
        answers = []
        try:
            for where, payload in payloads:
                try:
                    answers.append(await (aadvise(payload, llm=llm) if args.cmd == "advise"
                                          else ainvestigate(payload, llm=llm)))
                except PayloadInvalid as exc:
                    raise PayloadInvalid(f"{where}: {exc.detail}", exc.path) from None
        finally:
            if llm is not None:
                await llm.aclose()
        return answers

    answers = asyncio.run(go())
    if len(answers) == 1 and len(payloads) == 1 and not Path(args.file).is_dir():
        print(json.dumps(answers[0], indent=1))
    else:
        for answer in answers:  # several payloads: one answer per line, in input order
            print(json.dumps(answer))
    return 0


def _fill(text: str) -> str:
    return textwrap.fill(text, 100)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--env-file", metavar="FILE", default=None,
                        help="read settings from FILE (NAME=value lines; the environment wins) "
                        "(default: .env in the current directory, when present)")
    parser = argparse.ArgumentParser(prog="rlm-agent", epilog=EPILOG, formatter_class=_Help, description=_fill(
        "The brain of InferGuard on its own: serve it over HTTP, advise or investigate on payload files, run "
        "the evals. Settings come from the environment and .env (the environment wins), as for inferguard."))
    parser.add_argument("--version", action="version", version=f"rlm-agent {_version()}")
    sub = parser.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    serve = sub.add_parser("serve", parents=[common], formatter_class=_Help,
                           help="serve POST /v1/advise, POST /v1/investigate and GET /healthz",
                           description=_fill("Serve the brain over HTTP for InferGuard's remote brain mode "
                           "(INFERGUARD_BRAIN_MODE=remote, INFERGUARD_BRAIN_URL=http://HOST:PORT). Says on "
                           "stderr where it listens and whether the LLM is on."))
    serve.add_argument("--host", metavar="HOST", default=DEFAULT_HOST,
                       help="address to listen on; anything but loopback exposes the brain without auth")
    serve.add_argument("--port", metavar="PORT", type=int, default=DEFAULT_PORT, help="TCP port (0: any free port)")
    serve.add_argument("--log-level", metavar="LEVEL", default="warning",
                       choices=("critical", "error", "warning", "info", "debug", "trace"),
                       help="uvicorn's log level: critical, error, warning, info, debug or trace")
    for name, kind, what in (("advise", "incident", "diagnosis and advisories"),
                             ("investigate", "proactive", "proactive W1-W4 investigation")):
        one = sub.add_parser(name, parents=[common], formatter_class=_Help,
                             help=f"{what} for payload file(s) (kind '{kind}'); prints the answer JSON",
                             description=_fill(f"Print the {what} for each kind '{kind}' payload in FILE: one "
                             "payload (the body of POST /v1/" + name + ", as inferguard builds it), a "
                             "JSON array of them, JSON Lines, a directory of *.json files, or - for stdin. "
                             "One payload prints indented JSON; several print one answer per line. Uses "
                             "the LLM when GMI_API_KEY is set."))
        one.add_argument("file", metavar="FILE", help="payload file, directory of *.json, or - for stdin")
    ev = sub.add_parser("eval", parents=[common], formatter_class=_Help,
                        help="run the labelled cases and print an accuracy table",
                        description=_fill("Run the labelled cases through the rules (and optionally the LLM "
                        "path) and print an accuracy table. Exit 1 when a rules or double case fails."))
    ev.add_argument("--live", action="store_true", help="also run against the configured LLM endpoint")
    ev.add_argument("--double", action="store_true",
                    help="also run the LLM path against the loopback recorded-answer double (a test double)")
    ev.add_argument("--cases", metavar="DIR", default=None,
                    help="a folder of case JSON files (default: the packaged cases)")
    ev.add_argument("--json", metavar="FILE", default=None, help="write per-case results to FILE")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.cmd == "serve":
            return _serve(args)
        if args.cmd == "eval":
            return _eval(args)
        return _one(args)
    except RlmAgentError as exc:
        print(f"rlm-agent: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        print(f"rlm-agent: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
