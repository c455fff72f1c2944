"""Rotations, rigid transforms and the Monte-Carlo PSF."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from jaxmed import svr


@pytest.mark.parametrize("kind", ["axis_angle", "euler_zxz"])
def test_rotations_are_orthonormal_with_det_one(kind):
  rot = jax.random.uniform(jax.random.PRNGKey(0), (64, 3), minval=-3.0, maxval=3.0)
  r = np.asarray(svr.rotation_matrix(rot, kind), np.float64)
  np.testing.assert_allclose(r @ np.swapaxes(r, -1, -2), np.broadcast_to(np.eye(3), r.shape), atol=1e-5)
  np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=1e-5)


def test_axis_angle_matches_scipy_and_inverts():
  v = np.random.default_rng(0).uniform(-1.5, 1.5, (32, 3))
  r = np.asarray(svr.axis_angle_matrix(jnp.asarray(v)))
  np.testing.assert_allclose(r, Rotation.from_rotvec(v).as_matrix(), atol=1e-5)
  np.testing.assert_allclose(svr.matrix_axis_angle(r), v, atol=1e-4)


def test_euler_zxz_matches_scipy_intrinsic_zxz():
  a = np.random.default_rng(1).uniform(-2, 2, (16, 3))
  np.testing.assert_allclose(np.asarray(svr.euler_zxz_matrix(jnp.asarray(a))),
                             Rotation.from_euler("ZXZ", a).as_matrix(), atol=1e-5)


def test_axis_angle_gradient_is_finite_at_zero():
  g = jax.grad(lambda v: svr.axis_angle_matrix(v).sum())(jnp.zeros(3))
  assert np.isfinite(np.asarray(g)).all()


def test_compose_inverse_round_trip_and_centre_is_fixed():
  rng = np.random.default_rng(2)
  p = jnp.asarray(rng.uniform(-0.5, 0.5, (8, 6)), jnp.float32)
  c = jnp.asarray(rng.uniform(-20, 20, (8, 3)), jnp.float32)
  t = svr.rigid_matrix(p, c)
  np.testing.assert_allclose(np.asarray(svr.compose(t, svr.invert(t))), np.broadcast_to(np.eye(4), t.shape), atol=1e-5)
  np.testing.assert_allclose(np.asarray(svr.compose(svr.invert(t), t)), np.broadcast_to(np.eye(4), t.shape), atol=1e-5)
  # rotation about the slice centre: the centre moves by the translation only
  moved = np.asarray(t[:, :3, :3] @ c[..., None])[..., 0] + np.asarray(t[:, :3, 3])
  np.testing.assert_allclose(moved, np.asarray(c + p[:, 3:]), atol=1e-4)
  x = jnp.asarray(rng.normal(size=(8, 3)), jnp.float32)
  back = np.asarray((svr.invert(t)[:, :3, :3] @ (t[:, :3, :3] @ x[..., None] + t[:, :3, 3:]) + svr.invert(t)[:, :3, 3:]))
  np.testing.assert_allclose(back[..., 0], np.asarray(x), atol=1e-4)


def test_psf_sample_covariance_within_5_percent_of_target():
  sig = svr.psf_sigmas((0.8, 1.0), 3.0)
  np.testing.assert_allclose(sig, [1.2 * 0.8 / 2.3548, 1.2 * 1.0 / 2.3548, 3.0 / 2.3548], rtol=1e-3)
  o = np.asarray(svr.psf_offsets(jax.random.PRNGKey(0), (4000,), 16, sig)).reshape(-1, 3)
  cov = np.cov(o.T)
  np.testing.assert_allclose(np.diag(cov), sig ** 2, rtol=0.05)
  assert np.abs(cov - np.diag(np.diag(cov))).max() < 0.05 * (sig ** 2).min()


def test_psf_ramp_is_powers_of_two_up_to_the_cap():
  ks = [svr.psf_ramp(i, 100, 16) for i in range(100)]
  assert ks[0] == 1 and ks[-1] == 16 and all(a <= b for a, b in zip(ks, ks[1:]))
  assert set(ks) <= {1, 2, 4, 8, 16}
  assert svr.psf_ramp(0, 100, 16, "none") == 16
  assert svr.psf_ramp(50, 100, 16, "quadratic") == 4   # 16 * 0.25
  with pytest.raises(ValueError, match="thickness"):
    svr.psf_sigmas((1.0, 1.0), 0.0)
