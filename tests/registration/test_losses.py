"""Closed forms of the registration losses."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmed import registration as R


@pytest.mark.parametrize("a,b", [(2.5, 0.3), (-1.7, 4.0)])
def test_ncc_of_affine_intensity_map_is_one(a, b, strict_dtypes):
  img = jnp.asarray(np.random.default_rng(0).normal(size=(2, 24, 24, 1)), jnp.float32)
  assert float(R.local_ncc(img, a * img + b)) == pytest.approx(1.0, abs=1e-3)
  assert float(R.ncc_loss(img, a * img + b)) == pytest.approx(0.0, abs=1e-3)
  other = jnp.asarray(np.random.default_rng(1).normal(size=(2, 24, 24, 1)), jnp.float32)
  assert float(R.local_ncc(img, other)) < 0.1


def test_ncc_3d():
  img = jnp.asarray(np.random.default_rng(2).normal(size=(1, 12, 12, 12, 1)), jnp.float32)
  assert float(R.local_ncc(img, 3 * img - 1)) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("shape", [(10, 12), (6, 7, 8)])
def test_gradient_loss_of_linear_field(shape):
  n = len(shape)
  a = np.random.default_rng(3).normal(size=(n, n))
  u = jnp.einsum("ij,...j->...i", jnp.asarray(a, jnp.float32), R.identity_grid(shape))[None]
  assert float(R.gradient_loss(u, penalty="l2")) == pytest.approx(np.sum(a ** 2) / n ** 2, rel=1e-5)
  assert float(R.gradient_loss(u, penalty="l1")) == pytest.approx(np.sum(np.abs(a)) / n ** 2, rel=1e-5)
  assert float(R.gradient_loss(jnp.ones((1, *shape, n)))) == 0.0


def test_dice_loss_and_mse():
  y = jax.nn.one_hot(jnp.asarray(np.random.default_rng(4).integers(0, 3, (2, 8, 8))), 3)
  assert float(R.dice_loss(y, y)) == pytest.approx(0.0, abs=1e-5)
  assert float(R.dice_loss(y, 1.0 - y)) == pytest.approx(1.0, abs=1e-5)
  assert float(R.mse(y, y + 0.5)) == pytest.approx(0.25)
