"""Durations by log-scale bins, and percentiles (PostgreSQL's percentile_cont) over counts.

Bin 0 holds durations <= 0 ms; bin b >= 1 holds whole milliseconds d with
b = 1 + floor(8 * log2(d)), i.e. d in [2^((b-1)/8), 2^(b/8)): 8 bins per doubling, each
about 9 % wide. A bin stands for the geometric middle of its range (narrowed to the whole
milliseconds it can hold), so a duration is off by at most 2^(1/16) - 1 = 4.4 % of itself.

A percentile from bins is computed as percentile_cont would be over the estimated values:
the two neighbouring ranks are each within 4.4 % of the true values, and so is the linear
interpolation between them. So every p50/p95 from the histogram is within RELATIVE_ERROR of
the exact percentile_cont over the same rows.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Mapping

BINS_PER_DOUBLING = 8
RELATIVE_ERROR = 2 ** (1 / (2 * BINS_PER_DOUBLING)) - 1
"""Worst relative error of a percentile from bins against the exact one (0.0443)."""

_MAX_BIN = 1 + BINS_PER_DOUBLING * 63  # a BIGINT's worth of milliseconds

# The first whole millisecond of each bin b >= 1, computed exactly in integers: the smallest
# d with d^8 >= 2^(b-1). Floating-point log2 would misplace values at the bin edges.
_FIRST_MS = [0]
for _b in range(1, _MAX_BIN + 1):
    _power = 2 ** (_b - 1)
    _d = max(1, math.floor(2 ** ((_b - 1) / BINS_PER_DOUBLING)) - 1)
    while _d**BINS_PER_DOUBLING < _power:
        _d += 1
    _FIRST_MS.append(_d)
del _b, _power, _d


def duration_bin(duration_ms: int) -> int:
    """The bin of a duration in whole milliseconds."""
    if duration_ms <= 0:
        return 0
    return bisect_right(_FIRST_MS, duration_ms, lo=1) - 1


def sql_duration_bin(column: str) -> str:
    """PostgreSQL for `duration_bin(column)`: width_bucket over the bins' first milliseconds
    counts those <= the duration, as bisect_right does (0 for durations <= 0). numeric, as the
    last bin starts at 2^63, past BIGINT."""
    return f"width_bucket({column}::numeric, '{{{','.join(map(str, _FIRST_MS[1:]))}}}'::numeric[])"


def bin_estimate(bin_index: int) -> float:
    """The value a bin stands for: its geometric middle, within the whole ms it can hold."""
    if bin_index <= 0:
        return 0.0
    middle = 2 ** ((bin_index - 0.5) / BINS_PER_DOUBLING)
    first = _FIRST_MS[bin_index]
    last = _FIRST_MS[bin_index + 1] - 1 if bin_index < _MAX_BIN else math.inf
    # Clamping toward the whole milliseconds the bin can hold only moves closer to the truth.
    return float(min(max(middle, first), last))


def percentile_of_counts(counts: Mapping[float, int], fraction: float) -> float:
    """percentile_cont(fraction) over a multiset given as value -> how many times."""
    total = sum(counts.values())
    if total <= 0:
        return 0.0
    position = fraction * (total - 1)
    low_rank, high_rank = math.floor(position), math.ceil(position)
    low = high = None
    seen = 0
    for value in sorted(counts):
        seen += counts[value]
        if low is None and seen > low_rank:
            low = value
        if seen > high_rank:
            high = value
            break
    assert low is not None and high is not None
    return float(low + (high - low) * (position - low_rank))


def percentile(values: Iterable[int], fraction: float) -> float:
    """Linear interpolation between closest ranks, as PostgreSQL's percentile_cont computes it."""
    return percentile_of_counts(Counter(values), fraction)


def binned(durations: Mapping[int, int]) -> Counter[int]:
    """Counts per duration (ms) as counts per bin."""
    bins: Counter[int] = Counter()
    for duration, count in durations.items():
        bins[duration_bin(duration)] += count
    return bins


def estimated(bins: Mapping[int, int]) -> dict[float, int]:
    """Counts per bin as counts per estimated value, for percentile_of_counts."""
    return {bin_estimate(index): count for index, count in bins.items() if count}
