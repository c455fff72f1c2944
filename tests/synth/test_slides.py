"""Synthetic slides: seeded; stage set by burden *and* architecture; the amounts of fat and lymphocytes carry no
stage; the rendering deconvolves back to its stains."""

import numpy as np

from jaxmed.synth import slides as S


def test_seeded_and_the_stage_needs_more_than_burden():
  a, ia = S.synthetic_slide(3, size=256)
  b, ib = S.synthetic_slide(3, size=256)
  np.testing.assert_array_equal(a, b)
  assert ia["time"] == ib["time"] and a.dtype == np.uint8 and a.shape == (256, 256, 3)
  from sklearn.linear_model import LogisticRegression
  from sklearn.model_selection import cross_val_score

  rng = np.random.default_rng(0)
  lat = [S.draw_latent(rng) for _ in range(3000)]
  z = np.asarray([[v[k] for k in S.LATENTS] for v in lat])
  y = np.asarray([S.stage_of(v) for v in lat])
  assert np.all(np.abs(np.bincount(y) / len(y) - 1 / 3) < 0.03)  # tertiles
  full = cross_val_score(LogisticRegression(max_iter=2000), z, y, cv=5).mean()
  burden = cross_val_score(LogisticRegression(max_iter=2000), z[:, :1], y, cv=5).mean()
  assert full > 0.72 and burden < 0.62 and full - burden > 0.12, (full, burden)


def test_architecture_is_drawn_as_asked_and_amounts_carry_no_stage():
  fat, lymph = {0: [], 1: []}, {0: [], 1: []}
  for seed in range(6):
    for invasive in (0.0, 1.0):
      latent = {"burden": 0.15, "invasive": invasive, "immune": float(invasive), "noise": 0.0}
      _, info = S.synthetic_slide(seed, size=384, latent=latent)
      t = info["tissue"]
      assert abs(info["tumour_burden"] - 0.15) < 0.03
      k = int(invasive)
      fat[k].append((t == S.TISSUES.index("fat")).sum() / (t > 0).sum())
      lymph[k].append((t == S.TISSUES.index("lymphocytes")).sum() / (t > 0).sum())
      if invasive:  # an invasion front, and a lymphocyte cuff at the tumour border
        assert info["fat_contact"] > 0.1 and info["immune_contact"] > 0.9, info
      else:
        assert info["fat_contact"] == 0.0 and info["immune_contact"] < 0.1, info
  # the same amounts of fat and lymphocytes whatever the architecture
  assert abs(np.mean(fat[0]) - np.mean(fat[1])) < 0.02 and abs(np.mean(lymph[0]) - np.mean(lymph[1])) < 0.015


def test_cohort_shares_labels_within_a_patient():
  cohort = S.synthetic_cohort(0, 40)
  by_patient: dict = {}
  for s in cohort:
    by_patient.setdefault(s["patient"], []).append(s)
  assert len(cohort) == 40 and 20 < len(by_patient) < 40
  for rows in by_patient.values():
    assert len({(r["stage"], r["time"], r["event"]) for r in rows}) == 1
  assert len({s["slide_seed"] for s in cohort}) == 40


def test_nuclei_are_haematoxylin_dense_where_tissue_says_so():
  from skimage.color import rgb2hed

  rgb, info = S.synthetic_slide(1, size=384, stage=1)
  h = rgb2hed(rgb)[..., 0]
  t = info["tissue"]
  mean = {name: h[t == i].mean() for i, name in enumerate(S.TISSUES) if (t == i).any()}
  assert mean["lymphocytes"] > mean["stroma"] and mean["tumour"] > mean["stroma"] > mean["glass"] - 0.01
