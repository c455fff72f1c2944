"""Intervals for a demo's headline difference (DESIGN.md, Evidence: "a paired or bootstrap 95% CI")."""

from __future__ import annotations

import numpy as np


def paired_bootstrap(a, b, *, num_resamples: int = 10_000, level: float = 0.95, seed: int = 0
                     ) -> tuple[float, float, float]:
  """``(mean(a - b), lo, hi)``: the percentile bootstrap CI of a paired mean difference.

  Args:
    a, b: ``[n]`` per-item scores of two methods on the same items (e.g. 0/1 correctness).
    num_resamples: bootstrap resamples of the ``n`` items (with replacement, the same rows for a and b).
    level: the interval's coverage.
  """
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
    raise ValueError(f"paired_bootstrap: a and b must be equal-length 1-D arrays, got {a.shape} and {b.shape}")
  d = a - b
  idx = np.random.default_rng(seed).integers(0, len(d), size=(num_resamples, len(d)))
  means = d[idx].mean(1)
  tail = 100 * (1 - level) / 2
  return float(d.mean()), float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))
