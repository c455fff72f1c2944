"""The EEG study's statistics: seed means, subject-level age, cluster-bootstrap CIs and paired differences."""

import numpy as np
import pytest

from experiments.eeg_fm import evaluate


def _age_case(seed=0):
  rng = np.random.default_rng(seed)
  subject = np.repeat(np.arange(12), 3)                        # 12 subjects, 3 windows each
  age = np.repeat(rng.uniform(20, 80, 12), 3)
  return age, subject, rng


def test_age_is_scored_per_subject_and_averaged_over_seeds():
  age, subject, rng = _age_case()
  preds = [age + rng.normal(0, 5, age.shape) for _ in range(2)]
  out = evaluate.summarise("age", age, preds, subject, num_resamples=200)
  per_seed = []
  for p in preds:                                                # the subject mean of the windows, then MAE
    per_seed.append(np.mean([abs(p[subject == s].mean() - age[subject == s][0]) for s in range(12)]))
  assert out["mae"] == pytest.approx(np.mean(per_seed))
  lo, hi = out["mae_ci"]
  assert lo <= out["mae"] <= hi and hi - lo > 0


def test_seizure_ci_resamples_recordings_and_paired_differences_have_the_right_sign():
  rng = np.random.default_rng(1)
  subject = np.repeat(np.arange(10), 20)
  y = (rng.random(200) < 0.3).astype(int)
  good = [np.stack([1 - s, s], 1) for s in (np.clip(y + rng.normal(0, 0.4, 200), 0, 1) for _ in range(2))]
  bad = [np.stack([1 - s, s], 1) for s in (np.clip(y + rng.normal(0, 1.5, 200), 0, 1) for _ in range(2))]
  out = evaluate.summarise("seizure", y, good, subject, num_resamples=200)
  lo, hi = out["auroc_ci"]
  assert lo <= out["auroc"] <= hi
  d, dlo, dhi = evaluate.paired_difference("seizure", y, good, bad, subject, num_resamples=200)
  assert d > 0 and dlo > 0                                       # the better model is significantly better
  same = evaluate.paired_difference("seizure", y, good, good, subject, num_resamples=50)
  assert same == (0.0, 0.0, 0.0)
  age, subj, rng = _age_case(2)
  a = [age + rng.normal(0, 2, age.shape)]
  b = [age + rng.normal(0, 10, age.shape)]
  d, dlo, dhi = evaluate.paired_difference("age", age, a, b, subj, num_resamples=200)
  assert d < 0 and dhi < 0                                       # MAE: lower is better, so a - b < 0
