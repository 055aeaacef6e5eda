"""Wrong input on the command line, in settings and in files: one line naming the problem, the
documented exit code (64 a bad option or setting, 65 bad data, 73 an output that cannot be created),
never a traceback. Run as a user runs it: a subprocess per case, in a directory of its own."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import clean_env

URL = "http://127.0.0.1:9/metrics"

# (arguments, environment, files to write first, exit code, what the one line must name)
CASES: dict[str, tuple[list[str], dict[str, str], dict[str, bytes], int, str]] = {
    "watch interval -1": (["watch", URL, "--interval", "-1"], {}, {}, 64, "--interval"),
    "watch interval 0": (["watch", URL, "--interval", "0"], {}, {}, 64, "--interval"),
    "watch interval nan": (["watch", URL, "--interval", "nan"], {}, {}, 64, "--interval"),
    "watch interval inf": (["watch", URL, "--interval", "inf"], {}, {}, 64, "--interval"),
    "watch duration nan": (["watch", URL, "--duration", "nan"], {}, {}, 64, "--duration"),
    "record interval 0": (["record", URL, "--out", "t.jsonl", "--interval", "0"], {}, {}, 64, "--interval"),
    "record interval -1": (["record", URL, "--out", "t.jsonl", "--interval", "-1"], {}, {}, 64, "--interval"),
    "scan window -3": (["scan", URL, "--window", "-3"], {}, {}, 64, "--window"),
    "timeout inf": (["watch", URL], {"INFERGUARD_SCRAPE_TIMEOUT_SECONDS": "inf"}, {}, 64,
                    "INFERGUARD_SCRAPE_TIMEOUT_SECONDS"),
    "timeout nan": (["watch", URL], {"INFERGUARD_SCRAPE_TIMEOUT_SECONDS": "nan"}, {}, 64,
                    "INFERGUARD_SCRAPE_TIMEOUT_SECONDS"),
    "llm timeout inf": (["watch", URL], {"INFERGUARD_LLM_TIMEOUT_SECONDS": "inf"}, {}, 64,
                        "INFERGUARD_LLM_TIMEOUT_SECONDS"),
    "multiplier inf": (["watch", URL], {"TTFT_ALERT_MULTIPLIER": "inf"}, {}, 64, "TTFT_ALERT_MULTIPLIER"),
    "poll interval 0": (["watch", URL], {"POLL_INTERVAL_SECONDS": "0"}, {}, 64, "POLL_INTERVAL_SECONDS"),
    "queue threshold nan": (["config", "show"], {"INFERGUARD_QUEUE_THRESHOLD": "nan"}, {}, 64,
                            "INFERGUARD_QUEUE_THRESHOLD"),
    "per-target kv 5 (watch)": (["watch"], {"INFERGUARD_TARGETS_FILE": "t.yaml"},
                                {"t.yaml": f"- url: {URL}\n  thresholds: {{kv_threshold: 5}}\n".encode()}, 64,
                                "kv_threshold"),
    "per-target kv 5 (config show)": (["config", "show"], {"INFERGUARD_TARGETS_FILE": "t.yaml"},
                                      {"t.yaml": f"- url: {URL}\n  thresholds: {{kv_threshold: 5}}\n".encode()},
                                      64, "kv_threshold"),
    "per-target interval .inf": (["config", "show"], {"INFERGUARD_TARGETS_FILE": "t.yaml"},
                                 {"t.yaml": f"- url: {URL}\n  interval_seconds: .inf\n".encode()}, 64,
                                 "interval_seconds"),
    "binary targets file": (["config", "show"], {"INFERGUARD_TARGETS_FILE": "t.yaml"},
                            {"t.yaml": bytes(range(256))}, 64, "INFERGUARD_TARGETS_FILE"),
    "invalid byte in .env": (["config", "show"], {}, {".env": b"INFERGUARD_LISTEN=127.0.0.1:1\xff\n"}, 64, ".env"),
    "record --out unwritable": (["record", URL, "--out", "afile/t.jsonl", "--duration", "1"], {},
                                {"afile": b""}, 73, "afile/t.jsonl"),
    "watch --record unwritable": (["watch", URL, "--record", "afile/t.jsonl", "--no-listen", "--duration", "1"],
                                  {}, {"afile": b""}, 73, "afile/t.jsonl"),
    "replay corrupt gz": (["replay", "t.jsonl.gz"], {}, {"t.jsonl.gz": gzip.compress(b'{"ts": 1}\n' * 500)[:40]
                                                         + b"\x00" * 64}, 65, "t.jsonl.gz"),
    "replay nested JSON": (["replay", "t.jsonl"], {}, {"t.jsonl": b"[" * 100_000 + b"\n"}, 65, "t.jsonl:1"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_with_its_exit_code(case: str, tmp_path: Path) -> None:
    args, env, files, code, named = CASES[case]
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    p = subprocess.run([sys.executable, "-m", "inferguard", *args], capture_output=True, text=True, timeout=60,
                       env=clean_env() | env, cwd=tmp_path)
    assert "Traceback" not in p.stderr, p.stderr
    lines = p.stderr.strip().splitlines()
    assert (p.returncode, len(lines)) == (code, 1), p.stderr
    assert named in lines[0] and lines[0].startswith("inferguard: "), lines[0]
