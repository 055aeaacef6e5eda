"""Fast Prometheus text-exposition (0.0.4) parser, reduced to the sample names a caller keeps.

How it stays fast in CPython: one compiled regex describes every valid line kind and is anchored on
a literal ``\\n`` (sre scans for that prefix in C), so ``findall`` over ``"\\n" + text`` returns exactly
one tuple per *valid* line. Comparing that count with the number of newlines validates every line
without a Python-level loop; only on a mismatch does a slow per-line pass find and describe the
first bad line. Each distinct label-set text is checked strictly and parsed once per parser, then
cached (bounded), so a daemon re-scraping one target pays a dict lookup per line for labels; ``keep``
is memoised per name, and a skipped name costs no float conversion or list append.

Duplicate series (one name and label set twice on a page) keep the *first* value, as Prometheus'
scrape loop does (it drops the later sample as a duplicate); the rest are counted in
``Exposition.dropped["duplicate_series"]``, never silently taking the last value. Bounds per page,
counted the same way rather than failing the page: a series with a label name or value longer than
``max_label_length`` characters is dropped (``long_labels``), and kept samples past ``max_series``
are dropped (``series_over_limit``).

Reserved label names (``__`` prefix) are accepted, as the Go parser accepts them, and are ordinary
labels: kept as written, part of the series' identity, bounded like any other. The sample's own name
is always the metric name; a ``__name__`` label never renames a sample or changes what ``keep`` sees
(prometheus_client's parser rejects such pages; one stray label must not blind us to a target).

Deliberately strict where the Go parser Prometheus uses is strict: only the escapes \\ \" \n in
label values, duplicate label names rejected, TYPE lines must name a known type. Deliberately
lenient where real captures need it: ``...`` lines, ``, `` between labels, trailing comma, CRLF,
trailing blanks, HELP/TYPE without samples, no TYPE lines at all, a leading BOM.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from inferguard.errors import ExpositionError
from inferguard.models import Exposition, Labels

__all__ = ["MAX_LABEL_LENGTH", "MAX_SERIES", "ExpositionParser", "parse"]

MAX_SERIES = 50_000  # kept samples per page; a large real vLLM page keeps a few thousand
MAX_LABEL_LENGTH = 1024  # characters in one label name or value; model paths are far shorter

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL_NAME = r"[a-zA-Z_][a-zA-Z0-9_]*"
# Only the three escapes the format defines (\\ \" \n), as the Go parser Prometheus uses. Written
# "unrolled" so the engine never has two ways to match one character (no backtracking blow-up).
_QUOTED = r'"[^"\\\n]*(?:\\[\\"n][^"\\\n]*)*"'
_LABEL = rf"{_LABEL_NAME}[ \t]*=[ \t]*{_QUOTED}"
# `, ` between labels (dcgm-exporter README) and a trailing comma are both accepted.
_LABELS = rf"\{{[ \t]*(?:{_LABEL}(?:[ \t]*,[ \t]*{_LABEL})*(?:[ \t]*,)?[ \t]*)?\}}"
# What Go's strconv.ParseFloat accepts (minus hex floats), so Python's float() never sees
# something it would read differently (e.g. float() also accepts "1_0").
_VALUE = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?(?i:inf(?:inity)?)|(?i:nan)"
_TYPES = "counter|gauge|histogram|summary|untyped|unknown|info|stateset|gaugehistogram"
# End of line: trailing blanks and a CR (CRLF bodies) allowed; then a newline or the end of text.
_EOL = r"[ \t]*\r?(?![^\n])"

# The label block is captured loosely here (greedy to the line's last "}": a value or timestamp can
# not contain one) and checked strictly by _LABELS_RE once per distinct block text, in the parser's
# cache; doing the strict check inside this regex cost half the parse time on a vLLM page.
_SAMPLE = rf"({_NAME})(?:[ \t]*(\{{[^\n]*\}}))?[ \t]+({_VALUE})(?:[ \t]+-?[0-9]+)?{_EOL}"
_TYPE = rf"#[ \t]*TYPE[ \t]+({_NAME})[ \t]+({_TYPES}){_EOL}"
_COMMENT = r"#(?![ \t]*TYPE[ \t])[^\n]*"  # HELP and free comments; never matched on (HELP text lies)
_ELLIPSIS = rf"\.\.\.{_EOL}"  # docs truncate pages with a whole line "..."
_BLANK = rf"{_EOL}"

# Groups: 1 sample name, 2 label block, 3 value, 4 TYPE family, 5 TYPE kind. Comment, "..." and
# blank lines yield a tuple of empty strings (still counted as valid lines).
_LINE_RE = re.compile(rf"\n(?:{_SAMPLE}|{_TYPE}|{_COMMENT}|{_ELLIPSIS}|{_BLANK})")
_ONE_LINE_RE = re.compile(rf"(?:{_SAMPLE}|{_TYPE}|{_COMMENT}|{_ELLIPSIS}|{_BLANK})")
_LABELS_RE = re.compile(_LABELS)
_LABEL_RE = re.compile(rf"({_LABEL_NAME})[ \t]*=[ \t]*\"([^\"\\\n]*(?:\\[\\\"n][^\"\\\n]*)*)\"")
_ESCAPE_RE = re.compile(r"\\([\\\"n])")
_UNESCAPED = {"\\": "\\", '"': '"', "n": "\n"}

# Used only on the error path to say *why* a line is not a sample.
_NAME_PREFIX_RE = re.compile(rf"{_NAME}")
_SNIPPET = 60


def _unescape(match: re.Match[str]) -> str:
    return _UNESCAPED[match.group(1)]


def _snippet(line: str) -> str:
    return repr(line if len(line) <= _SNIPPET else line[:_SNIPPET] + "…")


def _describe(line: str) -> str:
    """Why ``line`` (known to be invalid) is not a sample/comment line, for the error detail."""
    stripped = line.strip()
    low = stripped[:15].lower()
    if low.startswith(("<!doctype", "<html", "<?xml", "<")):
        return f"looks like HTML/XML, not metrics: {_snippet(line)}"
    if stripped[:1] in ("{", "[") or stripped[:1] == '"':
        return f"looks like JSON, not metrics: {_snippet(line)}"
    if stripped.startswith("#"):
        return f"malformed TYPE line (needs a metric name and a known type): {_snippet(line)}"
    name = _NAME_PREFIX_RE.match(line)
    if name is None:
        return f"invalid metric name: {_snippet(line)}"
    rest = line[name.end():]
    if not rest.strip():
        return f"sample {name.group()!r} has no value: {_snippet(line)}"
    if rest.lstrip(" \t").startswith("{") and "}" not in rest:
        return f"unterminated label set (truncated line?): {_snippet(line)}"
    if rest[:1] not in (" ", "\t", "{"):
        return f"invalid metric name: {_snippet(line)}"
    return f"malformed labels or value: {_snippet(line)}"


def _first_bad_line(text: str) -> ExpositionError:
    for number, line in enumerate(text.split("\n"), start=1):
        if _ONE_LINE_RE.fullmatch(line) is None:
            return ExpositionError("not_metrics", _describe(line), line=number)
    # Unreachable while _LINE_RE and _ONE_LINE_RE agree; kept typed rather than an assert.
    return ExpositionError("not_metrics", "inconsistent page (parser bug)")


def _line_of(text: str, needle: str) -> int | None:
    at = text.find(needle)
    return None if at < 0 else text.count("\n", 0, at) + 1


class ExpositionParser:
    """Parses pages from one target. Reuse one instance per target: its caches make repeats fast.

    ``keep(sample_name)`` decides which samples are materialised (``None`` keeps everything); its
    answer is memoised per name. Label dicts are cached per label text (bounded by
    ``max_label_cache``) and shared between samples and scrapes: treat them as read-only.
    """

    __slots__ = ("_keep", "_kept", "_label_cache", "_max", "max_label_length", "max_series")

    def __init__(self, keep: Callable[[str], bool] | None = None, *, max_label_cache: int = 50_000,
                 max_series: int = MAX_SERIES, max_label_length: int = MAX_LABEL_LENGTH) -> None:
        if max_label_cache < 1 or max_series < 1 or max_label_length < 1:
            raise ValueError("max_label_cache, max_series and max_label_length must be >= 1")
        self._keep = keep
        self._max = max_label_cache
        self.max_series = max_series
        self.max_label_length = max_label_length
        self._kept: dict[str, bool] = {}
        # block text -> (labels, series key); labels None when a name or value is too long.
        self._label_cache: dict[str, tuple[Labels | None, tuple[tuple[str, str], ...]]] = {}

    def parse_bytes(self, body: bytes) -> Exposition:
        """Decode ``body`` as strict UTF-8 and parse it."""
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ExpositionError(
                "bad_encoding",
                f"body is not UTF-8 (byte {exc.start}: {exc.reason})",
                line=body.count(b"\n", 0, exc.start) + 1,
            ) from None
        return self.parse(text)

    def parse(self, text: str) -> Exposition:
        """Parse one page. Raises :class:`ExpositionError` (``not_metrics``) on anything else."""
        if not isinstance(text, str):
            raise ExpositionError("not_metrics", f"expected str, got {type(text).__name__}")
        if text.startswith("\ufeff"):  # a BOM is an encoding artefact, not content
            text = text[1:]
        page = "\n" + text
        found = _LINE_RE.findall(page)
        if len(found) != page.count("\n"):
            raise _first_bad_line(text)

        keep = self._keep
        kept = self._kept
        # Bound methods as locals: this loop runs once per line, attribute lookups show up here.
        kept_get = kept.get
        cache_get = self._label_cache.get
        samples: dict[str, list[tuple[Labels, float]]] = {}
        samples_get = samples.get
        # Series keys seen per kept name: the first sample of a series wins, later ones are counted.
        seen: dict[str, set[tuple[tuple[str, str], ...]]] = {}
        seen_get = seen.get
        types: dict[str, str] = {}
        sample_lines = 0
        kept_samples = 0
        max_series = self.max_series
        duplicates = long_labels = over_limit = 0
        empty: Labels = {}
        no_key: tuple[tuple[str, str], ...] = ()
        for name, block, value, family, kind in found:
            if not name:
                if family:
                    types[family] = kind
                continue
            sample_lines += 1
            # Every block is checked (strictly, once per distinct text) whether kept or not, so
            # what is accepted never depends on ``keep``.
            if block:
                entry = cache_get(block)
                if entry is None:
                    entry = self._labels(block, text)
                labels, key = entry
            else:
                labels, key = empty, no_key
            wanted = kept_get(name)
            if wanted is None:
                wanted = True if keep is None else bool(keep(name))
                if len(kept) >= self._max:
                    kept.clear()  # bounded: a hostile page with endless names cannot grow us
                kept[name] = wanted
            if not wanted:
                continue
            if labels is None:
                long_labels += 1
                continue
            keys = seen_get(name)
            if keys is None:
                seen[name] = keys = set()
            elif key in keys:
                duplicates += 1
                continue
            if kept_samples >= max_series:
                over_limit += 1
                continue
            keys.add(key)
            kept_samples += 1
            bucket = samples_get(name)
            if bucket is None:
                samples[name] = bucket = []
            bucket.append((labels, float(value)))
        if sample_lines == 0 and not types and not _has_comment(text):
            raise ExpositionError("not_metrics", "empty body: no samples and no comments", line=1)
        dropped = {k: n for k, n in (("duplicate_series", duplicates), ("long_labels", long_labels),
                                     ("series_over_limit", over_limit)) if n}
        return Exposition(samples=samples, types=types, sample_lines=sample_lines, dropped=dropped)

    def _labels(self, block: str, text: str) -> tuple[Labels | None, tuple[tuple[str, str], ...]]:
        """Check one label block strictly, parse and cache it (first sight per parser only)."""
        if _LABELS_RE.fullmatch(block) is None:
            raise ExpositionError(
                "not_metrics", f"malformed label set {_snippet(block)}", line=_line_of(text, block)
            )
        labels: Labels = {}
        for key, raw in _LABEL_RE.findall(block):
            if key in labels:
                raise ExpositionError(
                    "not_metrics", f"duplicate label {key!r} in {_snippet(block)}", line=_line_of(text, block)
                )
            labels[key] = _ESCAPE_RE.sub(_unescape, raw) if "\\" in raw else raw
        limit = self.max_label_length
        too_long = any(len(k) > limit or len(v) > limit for k, v in labels.items())
        # The series key ignores label order: a{x="1",y="2"} and a{y="2",x="1"} are one series.
        entry = (None if too_long else labels, () if too_long else tuple(sorted(labels.items())))
        if len(self._label_cache) >= self._max:
            self._label_cache.clear()
        self._label_cache[block] = entry
        return entry


def _has_comment(text: str) -> bool:
    # Reached only for pages with no TYPE line so far; a "#" at a line start means a comment line
    # (every line already validated, so a "#" can start nothing else).
    return text.startswith("#") or "\n#" in text


def parse(text: str, keep: Callable[[str], bool] | None = None) -> Exposition:
    """Parse one page with a throwaway parser (no caches kept between calls)."""
    return ExpositionParser(keep).parse(text)
