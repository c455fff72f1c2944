"""FFT and SENSE: Parseval, round trip, DC position, NumPy parity, adjointness, A^H A = I, data consistency."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmed import mri
from jaxmed.synth.cine import birdcage_maps, cine_phantom


def _cplx(rng, shape):
  return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)


def test_fft_parseval_round_trip_dc_and_numpy():
  rng = np.random.default_rng(0)
  x = _cplx(rng, (3, 12, 10))
  k = np.asarray(mri.fft2c(jnp.asarray(x)))
  np.testing.assert_allclose(np.sum(np.abs(k) ** 2), np.sum(np.abs(x) ** 2), rtol=1e-5)
  np.testing.assert_allclose(np.asarray(mri.ifft2c(jnp.asarray(k))), x, atol=1e-5)
  ones = np.asarray(mri.fft2c(jnp.ones((12, 10), jnp.complex64)))
  assert np.unravel_index(np.argmax(np.abs(ones)), ones.shape) == (6, 5)
  ref = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x, axes=(-2, -1))), axes=(-2, -1)) / np.sqrt(120)
  np.testing.assert_allclose(k, ref, atol=1e-5)


@pytest.mark.parametrize("mask_kind", ["lines", "points"])
def test_sense_adjointness(mask_kind):
  rng = np.random.default_rng(1)
  t, c, h, w = 4, 5, 16, 12
  maps = mri.normalize_maps(jnp.asarray(_cplx(rng, (c, h, w))))
  mask = rng.uniform(size=(t, w) if mask_kind == "lines" else (t, h, w)) < 0.4
  x, y = jnp.asarray(_cplx(rng, (t, h, w))), jnp.asarray(_cplx(rng, (t, c, h, w)))
  lhs = jnp.vdot(mri.sense_forward(x, maps, mask), y)
  rhs = jnp.vdot(x, mri.sense_adjoint(y, maps, mask))
  assert abs(complex(lhs - rhs)) / abs(complex(lhs)) < 1e-5


def test_full_mask_normal_operator_is_identity_and_dc_step_restores_sampled_lines():
  rng = np.random.default_rng(2)
  t, h, w = 3, 16, 16
  maps = jnp.asarray(birdcage_maps(h, w, 6))
  np.testing.assert_allclose(np.sum(np.abs(np.asarray(maps)) ** 2, 0), 1.0, atol=1e-5)
  x = jnp.asarray(_cplx(rng, (t, h, w)))
  full = np.ones((t, w), bool)
  np.testing.assert_allclose(np.asarray(mri.sense_adjoint(mri.sense_forward(x, maps, full), maps, full)),
                             np.asarray(x), atol=1e-5)
  # one DC step with lambda = 1 from any start gives the truth's k-space on the sampled lines (noise-free)
  mask = rng.uniform(size=(t, w)) < 0.5
  y = mri.sense_forward(x, maps, mask)
  x0 = jnp.asarray(_cplx(rng, (t, h, w)))
  x1 = mri.data_consistency(x0, y, maps, mask, 1.0)
  # per coil the update is exact on sampled lines only up to coil mixing; with one coil (S = 1) it is exact
  one = jnp.ones((1, h, w), jnp.complex64)
  y1 = mri.sense_forward(x, one, mask)
  z = mri.data_consistency(x0, y1, one, mask, 1.0)
  np.testing.assert_allclose(np.asarray(mri.sense_forward(z, one, mask)), np.asarray(y1), atol=1e-5)
  assert np.isfinite(np.asarray(x1)).all()


def test_cg_sense_beats_zero_filled():
  d = cine_phantom(3, size=(32, 32), frames=8, coils=8, noise=0.0)
  mask = mri.vista_mask(32, 8, 2, seed=0)
  y = jnp.asarray(d["kspace"]) * mri.expand_mask(jnp.asarray(mask))
  maps = jnp.asarray(d["maps"])
  zf = mri.sense_adjoint(y, maps, mask)
  cg = jax.jit(lambda y: mri.cg_sense(y, maps, mask, iters=30))(y)
  err = lambda a: float(jnp.linalg.norm(a - d["image"]))  # noqa: E731
  assert err(cg) < 0.5 * err(zf)
