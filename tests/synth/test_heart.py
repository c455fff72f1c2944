"""The synthetic cardiac cohort: closed-form volumes match voxel counts; causal links hold."""

import numpy as np

from jaxmed.synth import heart


def test_analytic_volumes_match_voxel_counts_and_the_mass_is_kept():
  rng = np.random.default_rng(3)
  subj = heart.draw_subject(rng)
  while subj["geometry"]["wma"] < 0.5:        # a subject with a regional wall-motion abnormality
    subj = heart.draw_subject(rng)
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


def test_disease_has_tabular_only_and_image_only_causes_and_lvef_is_no_disease_oracle():
  rng = np.random.default_rng(0)
  subs = [heart.draw_subject(rng) for _ in range(600)]
  d = np.array([s["disease"] for s in subs])
  age = np.array([s["tabular"]["age"] for s in subs])
  hyper = np.array([s["latent"]["hypertrophy"] for s in subs])
  wma = np.array([s["latent"]["wma"] for s in subs])
  ef = np.array([s["phenotypes"]["LVEF"] for s in subs])
  mass = np.array([s["phenotypes"]["LVM"] for s in subs])
  assert 0.3 < d.mean() < 0.6
  assert age[d == 1].mean() > age[d == 0].mean() + 3                  # tabular cause
  assert hyper[d == 1].mean() > hyper[d == 0].mean() + 0.5            # image-only causes
  assert (wma[d == 1] > 0).mean() > (wma[d == 0] > 0).mean() + 0.2
  assert abs(np.corrcoef(hyper, age)[0, 1]) < 0.15                    # not in the table
  assert np.corrcoef(hyper, mass)[0, 1] > 0.5
  assert ef[wma > 0].mean() < ef[wma == 0].mean() - 5                 # the sector's weak contraction lowers EF
  from sklearn.metrics import roc_auc_score
  assert roc_auc_score(d, -ef) < 0.8                                  # EF alone does not give the label away


def test_oracle_bounds_leave_room_for_fusion():
  rng = np.random.default_rng(7)
  subs = [heart.draw_subject(rng) for _ in range(3000)]
  o = heart.oracle_disease_auroc(subs, num_fit=6000)
  assert 0.7 < o["image"] < 0.9 and 0.7 < o["tabular"] < 0.9
  assert o["joint"] > max(o["image"], o["tabular"]) + 0.05
  r2 = heart.oracle_phenotype_r2(subs[:1000], num_fit=3000)
  assert r2["LVEF"]["image"] > 0.99 and r2["LVEF"]["tabular"] < 0.2        # LVEF is in the image
  assert r2["LVCO"]["joint"] > r2["LVCO"]["image"] + 0.1                    # LVCO also needs the heart rate


def test_cohort_layout_and_missing_values():
  c = heart.cardiac_cohort(6, seed=1, size=16, frames=5, num_sax=4, missing_fraction=0.3)
  assert c["cine"].shape == (6, 7, 5, 16, 16) and c["seg"].shape == c["cine"].shape
  assert set(np.unique(c["seg"])) <= {0, 1, 2, 3} and (c["seg"] == 1).any()
  assert c["phenotypes"].shape == (6, len(heart.PHENOTYPES))
  assert np.isnan(c["numerical"]).any() and (c["categorical"] == -1).any()
