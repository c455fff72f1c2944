"""Ceilings from the generator's ground truth (``jaxmed/synth/eeg.py``), on the same test recordings and windows.

- **seizure**: each test window scored by the fraction of it that the generator's seizures cover (their true
  onsets and durations). The window labels are a function of that overlap (``min_overlap``), so this is what a
  perfect detector reaches: AUROC 1 by construction. An earlier oracle scored the injected seizure power; it is
  not a ceiling (a window with 2 s of ramping-up seizure carries little power yet is labelled seizure), and a
  trained BIOT beat it.
- **age**: ridge regression of age on each subject's true generating variables (alpha peak frequency and
  amplitude, aperiodic exponent), fitted on the training subjects; the test MAE (years, one prediction per
  subject) is the floor the age signal in the data allows. The recording's other random draws (background rms,
  artefacts, mimics) are independent of age (``tests/experiments/test_eeg_evaluate.py`` checks it).
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import RidgeCV

from experiments.eeg_fm import data as eeg_data
from jaxmed.io import eeg_windows

AGE_TRUTH = ("alpha_hz", "alpha_uv", "aperiodic_exponent")


def seizure_scores(config, split: str, window_s: float) -> tuple[np.ndarray, np.ndarray]:
  """``(labels [N], oracle scores [N])`` over the split's windows, in :func:`data.task_windows`' order."""
  labels, scores = [], []
  for i in range(config.data[f"seizure_{split}"]):
    rec = eeg_data.recording(config, "seizure", split, i)
    _, starts = eeg_windows.fixed_windows(rec["data"][:1], rec["sfreq"], window_s, window_s / 2)
    ann = [a for a in rec["annotations"] if a[2] == "seizure"]
    labels.append(eeg_windows.window_labels(starts, window_s, ann, eeg_data.TASK_CLASSES["seizure"],
                                            min_overlap=min(0.5, 2.0 / window_s)))
    scores.append(np.array([sum(max(0.0, min(s + window_s, o + d) - max(s, o)) for o, d, _ in ann) / window_s
                            for s in starts]))
  return np.concatenate(labels), np.concatenate(scores)


def age_predictions(config) -> tuple[np.ndarray, np.ndarray]:
  """``(age [S], prediction [S])`` for the test subjects: a ridge fit of age on the true generating variables."""
  def table(split):
    recs = [eeg_data.recording(config, "age", split, i) for i in range(config.data[f"age_{split}"])]
    return np.array([[r[k] for k in AGE_TRUTH] for r in recs]), np.array([r["age"] for r in recs])
  (x_tr, y_tr), (x_te, y_te) = table("train"), table("test")
  mean, std = x_tr.mean(0), x_tr.std(0) + 1e-12
  fit = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit((x_tr - mean) / std, y_tr)
  return y_te, fit.predict((x_te - mean) / std)
