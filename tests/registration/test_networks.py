"""Registration networks: 2D/3D shapes, both architectures, identity at initialisation, shape errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmed import registration as R


@pytest.mark.parametrize("arch,transform,shape", [("vxm", "disp", (16, 16)), ("lku", "svf", (16, 16)),
                                                  ("vxm", "svf", (8, 8, 8))])
def test_forward_shapes_and_near_identity_start(arch, transform, shape):
  n = len(shape)
  net = R.registration_net(arch, transform, ndim=n, encoder=(4, 4), decoder=(4, 4), final=(4,), int_steps=3)
  x = jnp.asarray(np.random.default_rng(0).normal(size=(2, *shape, 1)), jnp.float32)
  params = jax.jit(net.init)(jax.random.PRNGKey(0), x, x)
  disp, field = jax.jit(net.apply)(params, x, x)
  assert disp.shape == field.shape == (2, *shape, n)
  assert float(jnp.max(jnp.abs(disp))) < 1e-2  # the N(0, 1e-5) flow head starts at the identity
  if arch == "lku":
    names = jax.tree_util.tree_flatten_with_path(params)[0]
    assert any("conv5" in jax.tree_util.keystr(p) for p, _ in names)  # the large-kernel branch exists


def test_unet_rejects_indivisible_shape():
  net = R.registration_net("vxm", "disp", ndim=2, encoder=(4, 4, 4), decoder=(4, 4, 4), final=(4,))
  x = jnp.zeros((1, 20, 20, 1))
  with pytest.raises(ValueError, match="divisible by 8"):
    net.init(jax.random.PRNGKey(0), x, x)
  with pytest.raises(ValueError, match="unknown registration architecture"):
    R.registration_net("transmorph", "disp", ndim=2)
