"""Exit codes of the `inferguard` commands, and the one place an error becomes one.

sysexits.h where a code fits: 64 (EX_USAGE) for a bad setting or argument, 65 (EX_DATAERR) for a
malformed input file, 73 (EX_CANTCREAT) for an output file that cannot be written,
69 (EX_UNAVAILABLE) for an address that cannot be listened on, 70 (EX_SOFTWARE)
for a backend that failed; 1 otherwise.
"""

from __future__ import annotations

import typer

from inferguard.errors import ConfigError, InferGuardError, OutputError, TimelineError

EXIT_USAGE, EXIT_DATA, EXIT_UNAVAILABLE, EXIT_SOFTWARE, EXIT_CANTCREAT = 64, 65, 69, 70, 73


def fail(exc: InferGuardError, prog: str = "inferguard", *, default: int = 1) -> typer.Exit:
    """Say what was wrong on stderr (the error names the setting or the line) and return the Exit to raise."""
    if isinstance(exc, ConfigError):
        typer.echo(f"{prog}: invalid setting {exc}", err=True)
        return typer.Exit(EXIT_USAGE)
    typer.echo(f"{prog}: {exc}", err=True)
    if isinstance(exc, OutputError):
        return typer.Exit(EXIT_CANTCREAT)
    return typer.Exit(EXIT_DATA if isinstance(exc, TimelineError) else default)
