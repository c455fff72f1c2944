"""Stage-2 loss ignores unacquired k-space and floors at eps for the truth; VICReg invariance; InfoNCE vs NumPy."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxmed import mri
from jaxmed.synth.cine import cine_phantom


def _setup():
  d = cine_phantom(2, size=(16, 16), frames=4, coils=4, noise=0.0)
  m1 = mri.vista_mask(16, 4, 4, seed=1)
  m2 = mri.vista_mask(16, 4, 4, seed=2)
  return d, jnp.asarray(m1), jnp.asarray(m2)


def test_parallel_loss_and_gradient_ignore_unacquired_kspace():
  d, m1, m2 = _setup()
  maps = jnp.asarray(d["maps"])
  acquired = mri.expand_mask(m1 | m2)

  def loss(scale, kspace):
    y1, y2 = kspace * mri.expand_mask(m1), kspace * mri.expand_mask(m2)
    # a tiny differentiable "network": a scaled zero-filled reconstruction
    x1 = scale * mri.sense_adjoint(y1, maps, m1)
    x2 = scale * mri.sense_adjoint(y2, maps, m2)
    return mri.parallel_loss(x1, x2, y1, y2, maps, m1, m2)[0]

  k = jnp.asarray(d["kspace"])
  rng = np.random.default_rng(0)
  junk = jnp.asarray(rng.standard_normal(k.shape) + 1j * rng.standard_normal(k.shape), jnp.complex64)
  k_other = jnp.where(acquired, k, junk)  # same acquired data, different unacquired k-space
  for f in (loss, jax.grad(loss)):
    np.testing.assert_allclose(float(f(1.3, k)), float(f(1.3, k_other)), rtol=1e-6)


def test_cross_loss_is_the_eps_floor_at_the_truth():
  d, m1, m2 = _setup()
  maps, x = jnp.asarray(d["maps"]), jnp.asarray(d["image"])
  y1 = mri.sense_forward(x, maps, m1)
  y2 = mri.sense_forward(x, maps, m2)
  eps = 1e-8
  total, parts = mri.parallel_loss(x, x, y1, y2, maps, m1, m2, eps=eps)
  n_locations = float((mri.expand_mask(m1).sum() + mri.expand_mask(m2).sum()) * 4 * 16)  # coils x readout
  assert float(parts["consistency"]) == 0.0
  np.testing.assert_allclose(float(parts["cross"]), n_locations * np.sqrt(eps), rtol=1e-3, atol=1e-3)


def test_vicreg_invariance_zero_for_identical_views():
  z = jnp.asarray(np.random.default_rng(0).standard_normal((16, 8)), jnp.float32)
  _, parts = mri.vicreg(z, z)
  assert float(parts["invariance"]) == 0.0 and float(parts["covariance"]) > 0


def test_info_nce_matches_numpy():
  rng = np.random.default_rng(3)
  z1, z2 = rng.standard_normal((5, 7)), rng.standard_normal((5, 7))
  neg = rng.uniform(size=(10, 10)) < 0.7
  got = float(mri.info_nce(jnp.asarray(z1), jnp.asarray(z2), temperature=0.1, negative_mask=jnp.asarray(neg)))
  z = np.concatenate([z1, z2])
  z = z / np.linalg.norm(z, axis=1, keepdims=True)
  total = 0.0
  for i in range(10):
    pos = (i + 5) % 10
    terms = [j for j in range(10) if j != i and (neg[i, j] or j == pos)]
    logits = np.asarray([z[i] @ z[j] / 0.1 for j in terms])
    total += -(z[i] @ z[pos] / 0.1 - np.log(np.exp(logits).sum()))
  np.testing.assert_allclose(got, total / 10, rtol=1e-5)
