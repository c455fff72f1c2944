"""The synthetic cardiac cohort: closed-form volumes match voxel counts; causal links hold."""

import numpy as np

from jaxmed.synth import heart


def test_analytic_volumes_match_voxel_counts_and_the_mass_is_kept():
  subj = heart.draw_subject(np.random.default_rng(3))
  grid = np.stack(np.meshgrid(*[np.arange(-110, 110, 0.75)] * 2, np.arange(-140, 1, 0.75), indexing="ij"), -1)
  voxel_ml = 0.75 ** 3 / 1000
  ed = heart.labels_at(grid, subj["geometry"], 0, 10)
  es = heart.labels_at(grid, subj["geometry"], 5, 10)
  p = subj["phenotypes"]
  assert abs((ed == 1).sum() * voxel_ml - p["LVEDV"]) / p["LVEDV"] < 0.02
  assert abs((es == 1).sum() * voxel_ml - p["LVESV"]) / p["LVESV"] < 0.03
  assert abs((ed == 3).sum() * voxel_ml - p["RVEDV"]) / p["RVEDV"] < 0.03
  myo_ed, myo_es = (ed == 2).sum() * voxel_ml, (es == 2).sum() * voxel_ml
  assert abs(myo_ed - p["LVM"] / 1.05) / myo_ed < 0.03 and abs(myo_es - myo_ed) / myo_ed < 0.03
  assert np.isclose(p["LVEF"], 100 * (p["LVEDV"] - p["LVESV"]) / p["LVEDV"])


def test_tabular_factors_drive_disease_and_phenotypes():
  rng = np.random.default_rng(0)
  subs = [heart.draw_subject(rng) for _ in range(600)]
  d = np.array([s["disease"] for s in subs])
  age = np.array([s["tabular"]["age"] for s in subs])
  sbp = np.array([s["tabular"]["sbp"] for s in subs])
  ef = np.array([s["phenotypes"]["LVEF"] for s in subs])
  mass = np.array([s["phenotypes"]["LVM"] for s in subs])
  assert 0.1 < d.mean() < 0.6
  assert age[d == 1].mean() > age[d == 0].mean() + 3 and sbp[d == 1].mean() > sbp[d == 0].mean() + 5
  assert ef[d == 1].mean() < ef[d == 0].mean() - 10
  assert np.corrcoef(sbp, mass)[0, 1] > 0.2


def test_cohort_layout_and_missing_values():
  c = heart.cardiac_cohort(6, seed=1, size=16, frames=5, num_sax=4, missing_fraction=0.3)
  assert c["cine"].shape == (6, 7, 5, 16, 16) and c["seg"].shape == c["cine"].shape
  assert set(np.unique(c["seg"])) <= {0, 1, 2, 3} and (c["seg"] == 1).any()
  assert c["phenotypes"].shape == (6, len(heart.PHENOTYPES))
  assert np.isnan(c["numerical"]).any() and (c["categorical"] == -1).any()
