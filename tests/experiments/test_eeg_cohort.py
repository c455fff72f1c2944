"""The EEG study's cohort: age reaches the signal only through its generating variables."""

import numpy as np

from experiments.eeg_fm import config as eeg_config
from experiments.eeg_fm import data, oracle


def test_age_is_independent_of_the_nuisance_draws():
  # an earlier cohort seeded the signal with the seed that drew the age, so background rms was a linear
  # function of age (corr 1.0) and a CNN read age off the amplitude
  c = eeg_config.get_config("demo")
  c.data.age_duration_s = 2.0
  recs = [data.recording(c, "age", "train", i) for i in range(60)]
  age = np.array([r["age"] for r in recs])
  nuisance = np.array([r["background_uv"] for r in recs])
  assert abs(np.corrcoef(age, nuisance)[0, 1]) < 0.4
  # the generating variables do carry it
  alpha = np.array([r["alpha_hz"] for r in recs])
  assert np.corrcoef(age, alpha)[0, 1] < -0.3


def test_seizure_oracle_is_the_ceiling_the_labels_allow():
  c = eeg_config.get_config("tiny")
  y, score = oracle.seizure_scores(c, "test", c.data.window_s)
  assert set(np.unique(y)) == {0, 1}
  assert score[y == 1].min() > score[y == 0].max()          # AUROC 1: the labels are a function of the truth
