"""Window quantiles from histogram bucket deltas, the way Prometheus' ``histogram_quantile`` does it.

The caller passes the per-bucket *cumulative* counts observed over one window (the bucket deltas
between two scrapes), never lifetime totals: a lifetime quantile hides a regression behind hours of
healthy history.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def histogram_quantile(q: float, bounds: Sequence[float], cumulative: Sequence[float]) -> float | None:
    """The ``q`` quantile (0 < q < 1) of one window, or ``None`` when it is unknown.

    ``bounds`` are the bucket upper bounds in ascending order, the last one ``+Inf``; ``cumulative``
    the matching cumulative counts. Inside a bucket the value is interpolated linearly (Prometheus
    assumes observations spread evenly); a rank that falls in the ``+Inf`` bucket returns the upper
    bound of the last finite bucket, since nothing better is known. No observations -> ``None``.
    """
    n = len(bounds)
    if n < 2 or n != len(cumulative) or not math.isinf(bounds[-1]) or bounds[-1] < 0:
        return None  # Prometheus answers NaN here: no +Inf bucket means the histogram is incomplete
    total = cumulative[-1]
    if not total > 0:  # also rejects NaN
        return None
    rank = q * total
    # First finite bucket whose cumulative count reaches the rank (a linear scan: pages carry ~20-40
    # buckets and the answer is usually early; bisect would need a monotone copy first).
    b = n - 1
    for i in range(n - 1):
        if cumulative[i] >= rank:
            b = i
            break
    if b == n - 1:
        return bounds[n - 2]
    upper = bounds[b]
    if b == 0:
        if upper <= 0:  # e.g. SGLang's le="0.0" bucket: everything there is exactly 0 (or below)
            return upper
        lower, below = 0.0, 0.0
    else:
        lower, below = bounds[b - 1], cumulative[b - 1]
    in_bucket = cumulative[b] - below
    if not in_bucket > 0:  # non-monotone input (a scrape racing an observe); no honest answer
        return None
    return lower + (upper - lower) * ((rank - below) / in_bucket)
