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


def bootstrap_metric(metric, y, preds, *, num_resamples: int = 1000, level: float = 0.95, seed: int = 0,
                     groups=None) -> tuple[float, float, float]:
  """``(value, lo, hi)`` of ``mean_s metric(y, preds[s])`` (e.g. AUROC or R^2 averaged over training seeds) with
  the percentile bootstrap over items: each resample draws ``n`` rows with replacement, the same rows for every
  seed. ``y [n, ...]``; ``preds``: a list of ``[n, ...]`` arrays. ``groups [n]`` (e.g. subject IDs of EEG
  windows) makes it a cluster bootstrap: whole groups are drawn with replacement, so rows of one subject are
  never treated as independent. Resamples where ``metric`` is undefined (one class only) are skipped."""
  y = np.asarray(y)
  preds = [np.asarray(p) for p in preds]
  value = float(np.mean([metric(y, p) for p in preds]))
  rng = np.random.default_rng(seed)
  if groups is not None:
    _, inverse = np.unique(np.asarray(groups), return_inverse=True)
    members = [np.flatnonzero(inverse == g) for g in range(inverse.max() + 1)]
  stats = []
  for _ in range(num_resamples):
    if groups is None:
      idx = rng.integers(0, len(y), len(y))
    else:
      idx = np.concatenate([members[g] for g in rng.integers(0, len(members), len(members))])
    try:
      stats.append(np.mean([metric(y[idx], p[idx]) for p in preds]))
    except ValueError:
      continue
  tail = 100 * (1 - level) / 2
  return value, float(np.percentile(stats, tail)), float(np.percentile(stats, 100 - tail))
