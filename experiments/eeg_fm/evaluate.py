"""Seed-averaged metrics with subject-level bootstrap 95% CIs, and paired differences between models.

- **age** is scored per subject: the window predictions of a subject are averaged, and MAE / Pearson r are
  over subjects (the audit found window-level age scores treating 3 windows of one person as 3 people);
- **seizure** and **events** are scored per window, with a *cluster* bootstrap over recordings (subjects):
  whole recordings are resampled, so correlated windows of one recording never narrow the CI;
- every value is the mean over training seeds; the CI resamples the same subjects for every seed
  (:func:`jaxmed.core.stats.bootstrap_metric`);
- :func:`paired_difference` bootstraps ``metric(a) - metric(b)`` on the same resamples: an ordering is called
  significant when that 95% CI excludes 0.
"""

from __future__ import annotations

import numpy as np

from jaxmed import eeg
from jaxmed.core.stats import bootstrap_metric

HEADLINE = {"age": "mae", "seizure": "auroc", "events": "balanced_accuracy"}


def subject_level(y: np.ndarray, scores: np.ndarray, subject: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Mean prediction and the target per subject (age: one value per subject)."""
  ids = np.unique(subject)
  return (np.array([y[subject == s][0] for s in ids]),
          np.array([np.asarray(scores)[subject == s].mean(0) for s in ids]))


def _metric(task: str, name: str):
  return lambda y, s: eeg.task_metric(task, name, y, s)


def summarise(task: str, y: np.ndarray, preds: list[np.ndarray], subject: np.ndarray, *, num_resamples: int,
              seed: int = 0) -> dict[str, float | list[float]]:
  """``{metric: mean over seeds}`` for every task metric, plus ``{headline}_ci: [lo, hi]``."""
  groups = None
  if task == "age":
    pairs = [subject_level(y, p, subject) for p in preds]
    y, preds = pairs[0][0], [p for _, p in pairs]
  else:
    groups = subject
  out: dict = {k: float(np.mean([v[k] for v in (eeg.task_metrics(task, y, p) for p in preds)]))
               for k in eeg.TASKS[task]["metrics"]}
  name = HEADLINE[task]
  _, lo, hi = bootstrap_metric(_metric(task, name), y, preds, num_resamples=num_resamples, seed=seed, groups=groups)
  out[f"{name}_ci"] = [lo, hi]
  return out


def paired_difference(task: str, y: np.ndarray, preds_a: list[np.ndarray], preds_b: list[np.ndarray],
                      subject: np.ndarray, *, num_resamples: int, seed: int = 0) -> tuple[float, float, float]:
  """``(diff, lo, hi)`` of the headline metric, model a minus model b, seed means, subject bootstrap."""
  groups = None
  if task == "age":
    y_s = subject_level(y, preds_a[0], subject)[0]
    preds_a = [subject_level(y, p, subject)[1] for p in preds_a]
    preds_b = [subject_level(y, p, subject)[1] for p in preds_b]
    y = y_s
  else:
    groups = subject
  m = _metric(task, HEADLINE[task])
  k = preds_a[0].shape[-1] if preds_a[0].ndim > 1 else 0
  stacked = [np.concatenate([a.reshape(len(a), -1), b.reshape(len(b), -1)], 1) for a, b in zip(preds_a, preds_b)]

  def diff(yy, p):
    if k:
      return m(yy, p[:, :k]) - m(yy, p[:, k:])
    return m(yy, p[:, 0]) - m(yy, p[:, 1])

  return bootstrap_metric(diff, y, stacked, num_resamples=num_resamples, seed=seed, groups=groups)
