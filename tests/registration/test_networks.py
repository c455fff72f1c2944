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
    R.registration_net("swin", "disp", ndim=2)


@pytest.mark.parametrize("arch", ["lku", "tm"])
@pytest.mark.parametrize("transform", ["disp", "svf"])
def test_lkunet_and_transmorph_shapes_in_2d_and_3d(arch, transform):
  for shape in ((16, 16), (8, 8, 8)):
    n = len(shape)
    net = R.registration_net(arch, transform, ndim=n, encoder=(4, 4), lku_start=4, tm_embed=8, tm_depths=(2, 1),
                             tm_heads=(2, 2), tm_window=2, int_steps=3, svf_half_res=n == 3)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(1, *shape, 1)), jnp.float32)
    params = net.init(jax.random.PRNGKey(0), x, x)
    disp, field = net.apply(params, x, x)
    assert disp.shape == field.shape == (1, *shape, n)
    assert float(jnp.max(jnp.abs(disp))) < 1e-2


def test_swin_window_partition_round_trip_and_shift_mask():
  from jaxmed.registration import transmorph as T
  x = jnp.arange(2 * 8 * 8 * 4 * 3, dtype=jnp.float32).reshape(2, 8, 8, 4, 3)
  win = T.window_partition(x, (4, 2, 4))
  assert win.shape == (2 * 2 * 4 * 1, 32, 3)
  np.testing.assert_array_equal(T.window_merge(win, (4, 2, 4), (8, 8, 4), 2), x)
  np.testing.assert_array_equal(win[0].reshape(4, 2, 4, 3), x[0, :4, :2, :4])
  mask = T.shifted_window_mask((8, 8), (4, 4), (2, 2))
  assert mask.shape == (4, 16, 16) and np.all(mask[0] == 0)  # the first window holds one region
  assert np.any(mask[-1] < 0)  # the corner window mixes regions that the cyclic shift brought together
  idx = T.relative_position_index((3, 3))
  assert idx.shape == (9, 9) and idx.min() == 0 and idx.max() == 24 and np.all(np.diag(idx) == 12)
  idx = T.relative_position_index((2, 3))  # (2*2-1) x (2*3-1) = 15 offsets, all reached
  assert sorted(np.unique(idx)) == list(range(15))
  assert T.fit_window((10, 12, 14), (5, 6, 7)) == ((5, 6, 7), (2, 3, 3))
  assert T.fit_window((5, 6, 7), (5, 6, 7)) == ((5, 6, 7), (0, 0, 0))
  with pytest.raises(ValueError, match="divisible by the window"):
    T.fit_window((10, 12, 14), (4, 4, 4))


@pytest.mark.parametrize("arch", ["vxm", "lku", "tm"])
def test_gradient_reaches_every_generated_weight(arch):
  # TransMorph with one stage of two blocks (plain and shifted windows); patch merging is in the shape test.
  net = R.registration_net(arch, "svf", ndim=2, encoder=(4, 4), decoder=(4, 4), final=(4,), lku_start=4,
                           tm_embed=8, tm_depths=(2,), tm_heads=(2,), tm_window=2, int_steps=3)
  hm = R.make_hypermorph(net, (1, 16, 16, 1), hidden=(8, 8), head_scale=1.0)
  hp = hm.init(jax.random.PRNGKey(0))
  rng = np.random.default_rng(1)
  m, f = (jnp.asarray(rng.uniform(size=(1, 16, 16, 1)), jnp.float32) for _ in range(2))

  def loss(hp):
    disp, field = hm.apply(hp, 0.4, m, f)
    return R.mse(f, R.warp(m, disp)) + 0.1 * R.gradient_loss(field)

  grads = jax.grad(loss)(hp)["params"]
  heads = [k for k in grads if k.startswith("head_")]
  assert len(heads) == len(jax.tree.leaves(net.init(jax.random.PRNGKey(0), m, f)))
  dead = [k for k in heads if float(jnp.max(jnp.abs(grads[k]["kernel"]))) == 0.0]
  assert not dead, f"no gradient reaches the generated leaves {dead}"


def test_half_resolution_svf_integration_matches_full_resolution_for_a_smooth_field():
  import flax.linen as nn
  import scipy.ndimage

  rng = np.random.default_rng(3)
  v = np.stack([scipy.ndimage.gaussian_filter(rng.normal(size=(32, 32)), 5.0) for _ in range(2)], -1)
  v = jnp.asarray(4.0 * v / np.abs(v).max(), jnp.float32)[None]  # up to 4 voxels, smooth

  class Fixed(nn.Module):
    @nn.compact
    def __call__(self, m, f):
      return v

  x = jnp.zeros((1, 32, 32, 1))
  full = R.RegistrationNet(Fixed(), "svf", int_steps=7).apply({}, x, x)[0]
  half = R.RegistrationNet(Fixed(), "svf", int_steps=7, svf_half_res=True).apply({}, x, x)[0]
  assert float(jnp.max(jnp.abs(full))) > 2.0
  inner = (slice(None), slice(4, -4), slice(4, -4))
  assert float(jnp.max(jnp.abs(half - full)[inner])) < 0.1 * float(jnp.max(jnp.abs(full)))
