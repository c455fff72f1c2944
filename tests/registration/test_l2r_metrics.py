"""Learn2Reg evaluation: nearest-neighbour label warps, surfel-weighted HD95, non-diffeomorphic volume, TRE."""

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage
from scipy.spatial.distance import cdist

from jaxmed import registration as R
from jaxmed.registration import surface


def test_nearest_label_warp_dice_on_a_known_warp():
  # Labels shifted by a known integer displacement: the order-0 warp moves them back exactly.
  lab = np.zeros((1, 24, 24), np.int32)
  lab[0, 4:12, 6:14], lab[0, 14:20, 10:22] = 1, 2
  fixed = np.roll(lab, (2, -3), axis=(1, 2))  # fixed(x) = moving(x - t), t = (2, -3)
  disp = jnp.zeros((1, 24, 24, 2)).at[..., 0].set(-2.0).at[..., 1].set(3.0)
  warped = R.warp_labels(jnp.asarray(lab), disp)
  np.testing.assert_allclose(R.dice_per_label(warped, jnp.asarray(fixed), [1, 2]), [[1.0, 1.0]])
  # A half-voxel shift: nearest neighbour keeps integer labels (no new values appear).
  half = R.warp_labels(jnp.asarray(lab), disp * 0.0 + 0.5)
  assert set(np.unique(np.asarray(half))) <= {0, 1, 2}


def _brute_force_hd(a, b, spacing, percent):
  """Surfel-weighted robust Hausdorff by explicit pairwise distances between border cells."""
  table = surface.surfel_area_table(tuple(spacing))
  full = 2 ** (2 ** a.ndim) - 1
  out = []
  for x, y in ((b, a), (a, b)):
    cx, cy = surface.neighbour_codes(x[None])[0], surface.neighbour_codes(y[None])[0]
    bx, by = (cx != 0) & (cx != full), (cy != 0) & (cy != full)
    d = cdist(np.argwhere(bx) * spacing, np.argwhere(by) * spacing).min(axis=1)
    w = table[cx[bx]]
    order = np.argsort(d, kind="stable")
    cum = np.cumsum(w[order]) / w.sum()
    out.append(d[order][min(np.searchsorted(cum, percent / 100), d.size - 1)])
  return max(out)


@pytest.mark.parametrize("shape,spacing", [((20, 24), (1.0, 1.0)), ((20, 24), (0.7, 1.3)),
                                           ((12, 14, 10), (1.0, 2.0, 0.5))])
def test_hd95_matches_brute_force_pairwise_distances(shape, spacing):
  rng = np.random.default_rng(0)
  blobs = lambda: scipy.ndimage.gaussian_filter(rng.normal(size=(4, *shape)), (0,) + (2,) * len(shape)) > 0.05  # noqa
  a, b = blobs(), blobs()
  got = R.robust_hausdorff(a, b, spacing=spacing, chunk_elems=3000)  # several stacked chunks
  ref = [_brute_force_hd(x, y, np.asarray(spacing), 95) for x, y in zip(a, b)]
  np.testing.assert_allclose(got, ref, rtol=1e-12)
  # The 100th percentile is the plain Hausdorff distance between the border cells (SciPy's).
  from scipy.spatial.distance import directed_hausdorff
  full = 2 ** (2 ** len(shape)) - 1
  for x, y, h in zip(a, b, R.robust_hausdorff(a, b, percent=100.0, spacing=spacing)):
    px, py = [np.argwhere((c != 0) & (c != full)) * spacing for c in surface.neighbour_codes(np.stack([x, y]))]
    assert h == pytest.approx(max(directed_hausdorff(px, py)[0], directed_hausdorff(py, px)[0]))


def test_hd95_closed_forms_and_learn2reg_conventions():
  inner = np.zeros((1, 100, 100), np.int32)
  inner[0, 10:90, 10:90] = 1
  outer = np.zeros_like(inner)
  outer[0, 9:91, 9:91] = 1  # one voxel larger on every side
  # Every inner border cell is 1 voxel from the outer border; only the outer corners are farther (sqrt 2).
  assert R.hd95_l2r(inner, outer, [1])[0, 0] == pytest.approx(1.0)
  assert R.robust_hausdorff(inner == 1, outer == 1, percent=100.0)[0] == pytest.approx(np.sqrt(2.0))
  assert R.hd95_l2r(inner, inner, [1])[0, 0] == 0.0
  assert R.hd95_l2r(inner, outer, [1], spacing=(2.0, 2.0))[0, 0] == pytest.approx(2.0)
  # Label 2 is absent from the fixed map: NaN; present in fixed but erased by the warp: inf.
  both = outer.copy()
  both[0, 40:50, 40:50] = 2
  hd = R.hd95_l2r(inner, both, [1, 2, 3])
  assert hd[0, 0] > 0 and np.isinf(hd[0, 1]) and np.isnan(hd[0, 2])
  assert np.isnan(R.hd95_l2r(inner, both, [2], moving=inner)[0, 0])  # absent from the moving labels


def _smooth_field(shape, amplitude, seed):
  rng = np.random.default_rng(seed)
  v = np.stack([scipy.ndimage.gaussian_filter(rng.normal(size=shape), 2.5) for _ in shape], -1)
  return jnp.asarray(amplitude * v / np.abs(v).max(), jnp.float32)[None]


@pytest.mark.parametrize("shape", [(32, 32), (14, 14, 14)])
def test_ndv_zero_for_diffeomorphic_svf_and_positive_for_folding_field(shape):
  n = len(shape)
  assert float(R.ndv_percent(jnp.zeros((1, *shape, n)))[0]) == 0.0
  v = _smooth_field(shape, 6.0, seed=1)
  assert float(R.folding_percent(R.jacobian_determinant(v))[0]) > 0.0  # as a displacement it folds
  assert float(R.ndv_percent(v)[0]) > 0.0
  assert float(R.ndv_percent(R.integrate_svf(v, steps=10))[0]) == 0.0  # exp(v) is a diffeomorphism
  # A point reflection inverts every simplex in 3D (det -1) and none in 2D (a rotation by pi).
  x = R.identity_grid(shape)
  reflected = float(R.ndv_percent((-2.0 * x)[None])[0])
  assert reflected == pytest.approx(100.0 if n == 3 else 0.0, abs=1e-3)
  # Affine maps with det > 0 are diffeomorphic.
  a = np.eye(n) + 0.3 * np.random.default_rng(0).normal(size=(n, n)) / n
  assert np.linalg.det(a) > 0
  assert float(R.ndv_percent((x @ jnp.asarray(a - np.eye(n), jnp.float32).T)[None])[0]) == pytest.approx(0.0)


def test_keypoint_tre_of_a_known_translation():
  disp = jnp.zeros((2, 16, 16, 16, 3)).at[..., 0].set(2.0)
  fixed_kp = jnp.asarray(np.random.default_rng(0).uniform(2, 13, (2, 5, 3)), jnp.float32)
  moving_kp = fixed_kp.at[..., 0].add(2.0)
  np.testing.assert_allclose(R.keypoint_tre(disp, fixed_kp, moving_kp), 0.0, atol=1e-5)
  tre = R.keypoint_tre(disp, fixed_kp, moving_kp + jnp.asarray([0.0, 3.0, 4.0]), spacing=(1.0, 1.0, 2.0))
  np.testing.assert_allclose(tre, np.hypot(3.0, 8.0), rtol=1e-5)
  padded = fixed_kp.at[1, 4].set(jnp.nan)  # NaN rows are padding (pairs with fewer keypoints)
  assert np.all(np.isfinite(R.keypoint_tre(disp, padded, moving_kp)))


def test_arc_points_reports_tre_and_masked_sdlogj_when_given():
  lab = jnp.zeros((2, 16, 16), jnp.int32).at[:, 4:12, 4:12].set(1)
  img = lab[..., None].astype(jnp.float32)
  shift = lambda lam, m, f: jnp.zeros(m.shape[:-1] + (2,)).at[..., 0].set(lam)  # noqa: E731  u = lam along axis 0
  fixed_kp = jnp.asarray(np.random.default_rng(0).uniform(3, 12, (2, 4, 2)), jnp.float32)
  out = R.arc_points(shift, jnp.asarray([0.0, 1.5]), img, img, lab, lab, labels=(1,), num_labels=2,
                     keypoints=(fixed_kp, fixed_kp), fixed_mask=jnp.ones((2, 16, 16), bool))
  np.testing.assert_allclose(out["tre"], [[0.0, 0.0], [1.5, 1.5]], atol=1e-5)  # phi(p) = p + lam e_0
  np.testing.assert_allclose(out["sdlogj"], 0.0, atol=1e-6)  # a translation is perfectly regular


def test_pair_displacement_inverts_the_generator_and_aligns_labels():
  from jaxmed.synth import NUM_LABELS, atlas_subjects, pair_displacement
  d = atlas_subjects(2, (48, 48), seed=3)
  u = pair_displacement(d["displacements"][0], d["displacements"][1])
  grid = np.stack(np.meshgrid(np.arange(48.0), np.arange(48.0), indexing="ij"), -1)
  y = grid + u  # phi_m(y) must equal phi_f(x)
  d_m = np.stack([scipy.ndimage.map_coordinates(d["displacements"][0][..., k], np.moveaxis(y, -1, 0), order=1,
                                                mode="nearest") for k in range(2)], -1)
  np.testing.assert_allclose(y + d_m, grid + d["displacements"][1], atol=1e-3)
  warped = R.warp_labels(jnp.asarray(d["labels"][:1]), jnp.asarray(u)[None])
  dice = float(np.nanmean(R.dice_per_label(warped, jnp.asarray(d["labels"][1:]), range(1, NUM_LABELS))))
  before = float(np.nanmean(R.dice_per_label(jnp.asarray(d["labels"][:1]), jnp.asarray(d["labels"][1:]),
                                             range(1, NUM_LABELS))))
  assert dice > 0.85 and dice > before + 0.3
