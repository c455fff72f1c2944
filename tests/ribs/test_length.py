"""Rib length on voxelised tube phantoms: closed-form arc length, the stump rule, border cuts, spacing."""

import numpy as np
import pytest

from jaxmed.ribs import ray_exit, rib_length
from jaxmed.synth import ribs as synth


def _arc(spacing, length=80 * np.pi / 3, radius=80.0, slope=0.0, beta0=0.0, tube=4.0):
  line = synth.rib_centreline(np.zeros(3), 1, length, radius, beta0, slope)
  mask, line = synth.voxelise_tube(line, tube, spacing)
  tangent = (line[1] - line[0]) / np.linalg.norm(line[1] - line[0])
  return mask, line, line[0] - 20 * tangent   # the "corpus" 20 mm before the rib's start


@pytest.mark.parametrize("spacing", [1.0, 0.6])
def test_arc_of_radius_80_and_60_degrees_measures_r_theta(spacing):
  mask, line, hint = _arc(spacing)
  res = rib_length(mask, (spacing,) * 3, hint)
  assert res.success and not res.at_border
  assert abs(res.length_mm - 80 * np.pi / 3) / (80 * np.pi / 3) < 0.03
  assert np.linalg.norm(res.path_mm[0] - line[0]) < 2.5   # starts at the articulating end
  assert res.stump is False


def test_spacing_1mm_and_0p6mm_agree_within_3_percent():
  m1, _, h1 = _arc(1.0)
  m2, _, h2 = _arc(0.6)
  l1 = rib_length(m1, (1.0,) * 3, h1).length_mm
  l2 = rib_length(m2, (0.6,) * 3, h2).length_mm
  assert abs(l1 - l2) / l2 < 0.03


def test_anisotropic_spacing_is_respected():
  """The same tube voxelised at 1 mm, then every second plane of axis 0 dropped (2 x 1 x 1 mm)."""
  m, _, h = _arc(1.0, beta0=-30.0)
  iso = rib_length(m, (1.0, 1.0, 1.0), h).length_mm
  aniso = rib_length(m[::2], (2.0, 1.0, 1.0), h).length_mm
  assert abs(iso - aniso) / iso < 0.03


def test_30mm_is_a_stump_80mm_is_full_and_a_border_cut_tube_is_not_measurable():
  m, _, h = _arc(1.0, length=30.0, radius=80.0, slope=0.3, beta0=-20.0)
  short = rib_length(m, (1.0,) * 3, h)
  assert short.stump is True and abs(short.length_mm - 30.0) < 1.5
  m, line, h = _arc(1.0, length=80.0, radius=80.0, slope=0.3, beta0=-20.0)
  full = rib_length(m, (1.0,) * 3, h)
  assert full.stump is False and abs(full.length_mm - 80.0) / 80.0 < 0.03
  cut = m[:, :, :int(m.shape[2] * 0.25)]            # the FOV border leaves ~25 mm of the rib
  res = rib_length(cut, (1.0,) * 3, h)
  assert res.at_border and res.length_mm <= 38.0 and res.stump is None


def test_ray_exit_of_a_ball_is_its_radius():
  r = 10.0
  g = np.stack(np.meshgrid(*[np.arange(41) * 0.5] * 3, indexing="ij"), -1)
  ball = (np.linalg.norm(g - 10.0, axis=-1) <= r).astype(np.float32)
  dirs = np.random.default_rng(0).normal(size=(16, 3))
  exits = ray_exit(ball, np.full(3, 10.0), dirs, 0.5)
  assert np.allclose(np.linalg.norm(exits - 10.0, axis=1), r, atol=0.3)


def test_empty_mask_is_a_clear_error():
  with pytest.raises(ValueError, match="empty"):
    rib_length(np.zeros((5, 5, 5), bool), (1.0,) * 3, np.zeros(3))
