"""The CLIP loss: NumPy reference, symmetry, the aligned limit, and sharded equals single-device."""

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from jaxmed import core
from jaxmed.cardiac.clip import clip_loss, clip_loss_shard_map


def _reference(a, b, tau):
  a = a / np.linalg.norm(a, axis=1, keepdims=True)
  b = b / np.linalg.norm(b, axis=1, keepdims=True)
  logits = a @ b.T / tau

  def ce(lg):
    lg = lg - lg.max(1, keepdims=True)
    return -np.mean(np.diag(lg) - np.log(np.exp(lg).sum(1)))

  return 0.5 * (ce(logits) + ce(logits.T))


def test_clip_loss_matches_numpy_and_is_symmetric():
  rng = np.random.default_rng(0)
  a, b = rng.normal(size=(16, 8)), rng.normal(size=(16, 8))
  got = float(clip_loss(jnp.asarray(a), jnp.asarray(b), 0.1))
  assert np.isclose(got, _reference(a, b, 0.1), rtol=1e-5)
  assert np.isclose(got, float(clip_loss(jnp.asarray(b), jnp.asarray(a), 0.1)), rtol=1e-6)


def test_perfectly_aligned_orthogonal_pairs_go_to_zero_at_small_temperature():
  z = jnp.eye(8)
  assert float(clip_loss(z, 3.0 * z, 0.01)) < 1e-6
  assert float(clip_loss(z, z, 1.0)) > 0.5   # not at a large temperature


def test_sharded_clip_loss_equals_single_device_on_8_devices():
  assert len(jax.devices()) == 8, "conftest sets 8 simulated CPU devices"
  rng = np.random.default_rng(1)
  a = jnp.asarray(rng.normal(size=(32, 16)), jnp.float32)
  b = jnp.asarray(rng.normal(size=(32, 16)), jnp.float32)
  single = float(clip_loss(jax.device_put(a, jax.devices()[0]), jax.device_put(b, jax.devices()[0]), 0.1))
  mesh = core.make_mesh({"data": -1, "fsdp": 1, "model": 1})
  sh = NamedSharding(mesh, P(("data", "fsdp")))
  a8, b8 = jax.device_put(a, sh), jax.device_put(b, sh)
  assert len(a8.sharding.device_set) == 8
  jitted = float(jax.jit(lambda x, y: clip_loss(x, y, 0.1))(a8, b8))
  explicit = float(jax.jit(lambda x, y: clip_loss_shard_map(x, y, mesh, 0.1, axes=("data", "fsdp")))(a8, b8))
  assert np.isclose(jitted, single, rtol=1e-5) and np.isclose(explicit, single, rtol=1e-5)
  # a per-device loss (negatives from the local 4 rows only) is a different number: the gather matters
  local = np.mean([float(clip_loss(a[i:i + 4], b[i:i + 4], 0.1)) for i in range(0, 32, 4)])
  assert not np.isclose(local, single, rtol=1e-3)
