"""The one percentile summary every benchmark and trace reports."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def p50_p99(xs: Sequence[float]) -> dict[str, float]:
    """``{"p50": ..., "p99": ...}`` of ``xs`` ({} when there is nothing to summarize)."""
    if len(xs) == 0:
        return {}
    a = np.asarray(xs, float)
    return {"p50": float(np.percentile(a, 50)), "p99": float(np.percentile(a, 99))}
