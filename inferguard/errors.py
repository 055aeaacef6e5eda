"""One exception tree. Third-party errors are wrapped where they happen; callers see only these."""

from __future__ import annotations


class InferGuardError(Exception):
    """Root of every error InferGuard raises on purpose."""


class ConfigError(InferGuardError):
    """A setting is invalid. ``setting`` names it so the operator can fix it."""

    def __init__(self, setting: str, message: str) -> None:
        message = " ".join(message.split())  # one line, whatever a parser put in it
        super().__init__(f"{setting}: {message}")
        self.setting = setting


class ExpositionError(InferGuardError):
    """The body is not Prometheus text exposition. ``reason`` is ``not_metrics`` or ``bad_encoding``."""

    def __init__(self, reason: str, detail: str, line: int | None = None) -> None:
        where = f" at line {line}" if line is not None else ""
        super().__init__(f"{reason}{where}: {detail}")
        self.reason = reason
        self.detail = detail
        self.line = line


class TimelineError(InferGuardError):
    """A recorded timeline is malformed. ``line`` is 1-based."""

    def __init__(self, path: str, line: int, detail: str) -> None:
        super().__init__(f"{path}:{line}: {detail}")
        self.path = path
        self.line = line
        self.detail = detail


class OutputError(InferGuardError):
    """An output file (a timeline to record into) cannot be created or written."""


class PayloadError(InferGuardError):
    """A brain payload or answer failed schema validation (or the brain could not be reached)."""


class MemoryBackendError(InferGuardError):
    """An incident-memory backend failed (connection, protocol, serialisation)."""


class SinkError(InferGuardError):
    """A notification sink failed to deliver."""


class ActuationError(InferGuardError):
    """The actuation gate refused an action, or the actuation webhook failed."""


class SilenceError(InferGuardError):
    """A silence request is invalid (``field`` names what) or names a silence that does not exist."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
