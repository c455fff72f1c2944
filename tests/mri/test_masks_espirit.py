"""VISTA, SSDU, fastMRI masks; ESPIRiT maps good enough for CG-SENSE."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxmed import mri
from jaxmed.synth.cine import cine_phantom


@pytest.mark.parametrize("p,t,R", [(32, 8, 4), (64, 16, 8), (64, 16, 16), (48, 12, 6)])
def test_vista_lines_coverage_and_seed(p, t, R):
  m = mri.vista_mask(p, t, R, seed=3)
  assert m.shape == (t, p) and (m.sum(1) == round(p / R)).all()
  assert m.any(0).all()  # the time-averaged k-space is fully sampled
  np.testing.assert_array_equal(m, mri.vista_mask(p, t, R, seed=3))
  assert not np.array_equal(m, mri.vista_mask(p, t, R, seed=4))
  # variable density: the central quarter is sampled more often than the outer half (when there are spare
  # samples: at R = T every line is acquired exactly once)
  count = m.sum(0)
  if m.sum() >= 2 * p:
    assert count[3 * p // 8:5 * p // 8].mean() > count[np.r_[:p // 4, 3 * p // 4:p]].mean()


def test_ssdu_split_is_a_disjoint_partition_with_ratio_rho():
  acquired = mri.expand_line_mask(mri.vista_mask(64, 16, 4, seed=0), 48)
  train, loss = mri.ssdu_split(acquired, rho=0.4, seed=1)
  assert not (train & loss).any()
  np.testing.assert_array_equal(train | loss, acquired)
  assert abs(loss.sum() / acquired.sum() - 0.4) <= 0.01
  assert train[:, 22:26, 30:34][acquired[:, 22:26, 30:34]].all()  # the calibration block stays in train


def test_fastmri_masks():
  r = mri.fastmri_random_mask(320, center_fraction=0.08, acceleration=4, seed=0)
  e = mri.fastmri_equispaced_mask(320, center_fraction=0.08, acceleration=4, seed=0)
  for m in (r, e):
    assert m[147:173].all()  # 26 central lines
    assert abs(m.mean() - 0.25) < 0.08


def test_espirit_maps_match_truth_and_cg_sense_quality():
  d = cine_phantom(1, size=(64, 64), frames=16, coils=8)
  mask = mri.vista_mask(64, 16, 4, seed=0)
  est = mri.espirit_maps(mri.time_average(d["kspace"], mask), (64, 64), calib=24, kernel=6)
  obj = np.abs(d["image"][0]) > 0.02
  agreement = np.abs((np.conj(est) * d["maps"]).sum(0))  # 1 where equal up to a per-pixel phase
  assert agreement[obj].mean() > 0.99
  y = jnp.asarray(d["kspace"]) * mri.expand_mask(jnp.asarray(mask))

  def psnr(maps):
    x = np.abs(np.asarray(mri.cg_sense(y, jnp.asarray(maps), mask, iters=30)))  # magnitudes: maps' phase differs
    gt = np.abs(d["image"])
    return 20 * np.log10(gt.max() / np.sqrt(np.mean((x - gt) ** 2)))

  assert psnr(est) >= psnr(d["maps"]) - 1.0
