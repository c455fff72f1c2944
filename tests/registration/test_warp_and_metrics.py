"""Closed forms and invariances of the warp, SVF integration, Jacobian and regularity metrics."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxmed import registration as R


def _affine_disp(shape, a):
  """u(x) = A (x - c): [1, *S, n]."""
  grid = R.identity_grid(shape)
  centre = (jnp.asarray(shape, jnp.float32) - 1) / 2
  return jnp.einsum("ij,...j->...i", jnp.asarray(a, jnp.float32), grid - centre)[None]


@pytest.mark.parametrize("shape", [(24, 20), (12, 14, 10)])
def test_affine_field_jacobian_equals_det_and_sdlogj_is_zero(shape, strict_dtypes):
  n = len(shape)
  a = 0.1 * np.random.default_rng(0).normal(size=(n, n))
  u = _affine_disp(shape, a)
  jac = R.jacobian_determinant(u)
  interior = jac[(0,) + (slice(1, -1),) * n]
  np.testing.assert_allclose(interior, np.linalg.det(np.eye(n) + a), rtol=1e-5)
  assert float(R.sdlogj_l2r(jac)[0]) < 1e-5
  assert float(R.sdlogj_masked(jac)[0]) < 1e-5
  ident = R.jacobian_determinant(jnp.zeros((1, *shape, n)))
  assert float(R.sdlogj_l2r(ident)[0]) < 1e-6 and float(R.sdlogj_masked(ident)[0]) < 1e-6
  assert float(R.folding_percent(ident)[0]) == 0.0


def test_jacobian_respects_spacing():
  a = np.array([[0.2, 0.0], [0.1, -0.1]])
  u_vox = _affine_disp((16, 16), a)
  spacing = (2.0, 0.5)
  # the same map in mm: u_mm = u_vox * spacing, x_mm = x_vox * spacing
  u_mm = u_vox * jnp.asarray(spacing)
  j_vox = R.jacobian_determinant(u_vox)
  j_mm = R.jacobian_determinant(u_mm, spacing)
  np.testing.assert_allclose(j_mm, j_vox, rtol=1e-5)


def test_warp_translation_and_spacing():
  img = jnp.asarray(np.random.default_rng(1).normal(size=(1, 16, 16, 2)), jnp.float32)
  shift = jnp.zeros((1, 16, 16, 2)).at[..., 0].set(2.0)
  out = R.warp(img, shift)
  np.testing.assert_allclose(out[0, :-2], img[0, 2:], atol=1e-6)
  np.testing.assert_allclose(R.warp(img, shift * 3.0, spacing=(3.0, 1.0)), out, atol=1e-6)
  with pytest.raises(ValueError, match="spacing"):
    R.warp(img, shift, spacing=(1.0,))


def test_label_warp_nearest_and_onehot_agree_on_integer_shift():
  lab = jnp.asarray(np.random.default_rng(2).integers(0, 4, (1, 12, 12)), jnp.int32)
  shift = jnp.zeros((1, 12, 12, 2)).at[..., 1].set(1.0)
  a = R.warp_labels(lab, shift)
  b = R.warp_labels(lab, shift, num_labels=4, method="onehot")
  np.testing.assert_array_equal(a[0, :, :-1], lab[0, :, 1:])
  np.testing.assert_array_equal(a, b)


def _smooth_velocity(shape, amplitude, seed=0, control=4):
  rng = np.random.default_rng(seed)
  n = len(shape)
  coarse = rng.normal(size=(n, control, control))
  import scipy.ndimage
  grid = np.meshgrid(*[np.linspace(0, control - 1, s) for s in shape], indexing="ij")
  v = np.stack([scipy.ndimage.map_coordinates(coarse[k], grid, order=3) for k in range(n)], -1)
  return jnp.asarray(amplitude * v / np.abs(v).max(), jnp.float32)[None]


def test_scaling_and_squaring_does_not_fold_but_raw_displacement_does():
  v = _smooth_velocity((48, 48), amplitude=12.0, control=6)
  raw = R.jacobian_determinant(v)
  diffeo = R.jacobian_determinant(R.integrate_svf(v, steps=7))
  assert float(R.folding_percent(raw)[0]) > 1.0  # the same field as a displacement folds
  assert float(R.folding_percent(diffeo)[0]) == 0.0


def test_exp_v_composed_with_exp_minus_v_is_identity():
  v = _smooth_velocity((48, 48), amplitude=3.0, seed=3)
  fwd, inv = R.integrate_svf(v), R.integrate_svf(-v)
  both = R.compose(fwd, inv)
  inner = both[0, 6:-6, 6:-6]
  assert float(jnp.max(jnp.abs(inner))) < 0.05 * float(jnp.max(jnp.abs(fwd)))


def test_compose_matches_sequential_warps():
  img = _smooth_velocity((32, 32), 1.0, seed=4)[..., :1]
  u, v = _smooth_velocity((32, 32), 2.0, seed=5), _smooth_velocity((32, 32), 2.0, seed=6)
  seq = R.warp(R.warp(img, u), v)
  once = R.warp(img, R.compose(u, v))
  np.testing.assert_allclose(seq[0, 4:-4, 4:-4], once[0, 4:-4, 4:-4], atol=0.02)


def test_dice_and_hd95_closed_forms():
  a = np.zeros((1, 20, 20), np.int32)
  a[0, 5:15, 5:15] = 1
  b = np.zeros_like(a)
  b[0, 5:15, 8:18] = 1  # shifted by 3 voxels
  dice = R.dice_per_label(jnp.asarray(a), jnp.asarray(b), [1, 2])
  np.testing.assert_allclose(dice[0, 0], 2 * 70 / 200, rtol=1e-6)
  assert np.isnan(dice[0, 1])
  hd = R.hd95(a, b, [1])
  assert hd[0, 0] == pytest.approx(3.0)
  assert R.hd95(a, a, [1])[0, 0] == 0.0
  assert R.hd95(a, b, [1], spacing=(1.0, 2.0))[0, 0] == pytest.approx(6.0)


def test_sdlogj_masked_ignores_folds_and_counts_them():
  jac = jnp.asarray(np.array([[[1.0, 2.0], [-1.0, 0.5]]]))
  assert float(R.folding_percent(jac)[0]) == 25.0
  expected = np.std(np.log([1.0, 2.0, 0.5]))
  np.testing.assert_allclose(R.sdlogj_masked(jac)[0], expected, rtol=1e-6)
  mask = jnp.asarray(np.array([[[1, 1], [1, 0]]]))
  np.testing.assert_allclose(R.sdlogj_masked(jac, mask)[0], np.std(np.log([1.0, 2.0])), rtol=1e-6)
