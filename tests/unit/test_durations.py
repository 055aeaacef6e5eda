"""Every option that takes a duration reads it the same way (``silence add --for``, ``incidents list --since``)."""

from __future__ import annotations

import pytest
import typer

from inferguard.cli_memory import parse_since
from inferguard.durations import parse_duration
from inferguard.errors import SilenceError
from inferguard.sinks.silences import parse_duration as silence_for

FORMS = {"90": 90, "90s": 90, "30m": 1800, "1.5h": 5400, "1h30m": 5400, "2H": 7200, " 7d ": 604800,
         "1w": 604800, "0.5m30s": 60}


@pytest.mark.parametrize(("text", "seconds"), sorted(FORMS.items()))
def test_one_reading_for_every_duration_option(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds
    assert silence_for(text) == seconds
    assert parse_since(text) == seconds


@pytest.mark.parametrize("text", ["", "two hours", "1x", "h", "-5m", "1e400", "9" * 400 + "w", "1h 30m"])
def test_what_is_not_a_duration_is_refused_by_each_option(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)
    with pytest.raises(SilenceError):
        silence_for(text)
    with pytest.raises(typer.BadParameter):
        parse_since(text)


def test_a_silence_must_last() -> None:
    assert parse_duration("0s") == 0
    with pytest.raises(SilenceError, match="longer than zero"):
        silence_for("0s")
