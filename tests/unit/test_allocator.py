"""The daemon's allocator settings, on this machine's real glibc: big freed buffers leave the process.

Each case runs in a fresh interpreter (the settings are per process). It frees one 24 MiB buffer (a
large page), then takes and frees 12 MiB buffers with small live objects allocated after each (the
rest of a scrape's work). Without the settings glibc keeps the 12 MiB in its heap; with them RSS comes
back. A process on another C library has nothing to measure here.
"""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import pytest

from inferguard.runtime import allocator

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the settings are glibc's")

PROBE = textwrap.dedent("""
    import sys
    from pathlib import Path

    def rss_mb():
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024

    if sys.argv[1] == "tame":
        from inferguard.runtime.allocator import tame
        print(tame(), file=sys.stderr)
    big = bytearray(24 << 20)
    del big
    before = rss_mb()
    keep = []
    for _ in range(8):
        page = bytearray(12 << 20)
        keep.append(bytearray(4096))
        del page
    print(rss_mb() - before)
""")


def _retained_mb(mode: str, env: dict[str, str] | None = None) -> int:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True,
                         env=env, timeout=60)
    return int(out.stdout.strip())


def test_without_the_settings_glibc_keeps_a_freed_page() -> None:
    # The premise: if this stops holding (a glibc that returns memory on its own), the settings are moot.
    assert _retained_mb("plain") >= 10


def test_with_the_settings_a_freed_page_goes_back_to_the_os() -> None:
    assert _retained_mb("tame") <= 2


def test_an_operators_own_glibc_setting_wins() -> None:
    import os

    env = os.environ | {"MALLOC_MMAP_THRESHOLD_": str(64 << 20)}
    said = subprocess.run([sys.executable, "-c", "from inferguard.runtime.allocator import tame; print(tame())"],
                          capture_output=True, text=True, check=True, env=env, timeout=60).stdout.strip()
    assert said == "2 arenas"


def test_it_says_what_it_did_and_does_it_once() -> None:
    first = allocator.tame()
    assert allocator.tame() is first
    assert "arenas" in first or first.startswith(("skipped", "left"))
