"""``rlm-agent``: serve the brain over HTTP, run the evals, or advise on one payload file."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

from .errors import RlmAgentError
from .llm import LLMClient, LLMSettings


def _llm_from_env() -> LLMClient | None:
    settings = LLMSettings.from_env(os.environ)
    return LLMClient(settings) if settings.api_key else None


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .server import create_app

    uvicorn.run(create_app(_llm_from_env()), host=args.host, port=args.port, log_level=args.log_level,
                lifespan="on", ws="none")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from .evals.runner import load_cases, run_double, run_live, run_rules, table

    cases = load_cases(Path(args.cases) if args.cases else None)
    results = run_rules(cases)
    usage = None
    if args.double:
        results += asyncio.run(run_double(cases))
    if args.live:
        settings = LLMSettings.from_env(os.environ)
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


def _one(args: argparse.Namespace) -> int:
    from .agent import aadvise, ainvestigate

    payload = json.loads(Path(args.file).read_text("utf-8"))
    llm = _llm_from_env()

    async def go() -> dict[str, object]:
        try:
            if args.cmd == "advise":
                return await aadvise(payload, llm=llm)
            return await ainvestigate(payload, llm=llm)
        finally:
            if llm is not None:
                await llm.aclose()

    print(json.dumps(asyncio.run(go()), indent=1))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rlm-agent", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    serve = sub.add_parser("serve", help="serve POST /v1/advise, /v1/investigate and GET /healthz")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8377)
    serve.add_argument("--log-level", default="warning")
    ev = sub.add_parser("eval", help="run the labelled cases and print an accuracy table")
    ev.add_argument("--live", action="store_true", help="also run against the configured LLM endpoint")
    ev.add_argument("--double", action="store_true",
                    help="also run the LLM path against the loopback recorded-answer double")
    ev.add_argument("--cases", help="a folder of case JSON files (default: the packaged cases)")
    ev.add_argument("--json", help="write per-case results to this file")
    for name in ("advise", "investigate"):
        one = sub.add_parser(name, help=f"{name} on one payload JSON file and print the answer")
        one.add_argument("file")
    args = parser.parse_args(argv)
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
