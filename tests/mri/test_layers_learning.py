"""Complex layers do complex arithmetic; the parallel self-supervised net learns (beats zero-filled by 3 dB)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxmed import mri


def test_complex_conv_is_complex_linear_and_modrelu_keeps_phase():
  x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 6, 6, 3)) * (1 + 1j), jnp.complex64)
  conv = mri.ComplexConv(4, (3, 3))
  p = conv.init(jax.random.PRNGKey(0), x)
  bias = p["params"]["bias"]
  f = lambda v: conv.apply(p, v) - (bias[0] + 1j * bias[1])  # noqa: E731
  np.testing.assert_allclose(np.asarray(f(1j * x)), np.asarray(1j * f(x)), atol=1e-5)  # C-linear, not just R-linear
  z = jnp.asarray([[3 + 4j, 0.001 + 0j]])
  out = mri.ModReLU().apply({"params": {"b": jnp.asarray([-1.0, -1.0])}}, z).reshape(-1)
  np.testing.assert_allclose(np.asarray(out), [4 * (3 + 4j) / 5, 0.0], atol=1e-5)


def test_magnitude_max_pool_picks_largest_modulus():
  x = jnp.asarray([1 + 0j, -3j, 2 + 2j, 0.5]).reshape(1, 1, 2, 2, 1)
  np.testing.assert_allclose(np.asarray(mri.magnitude_max_pool(x, window=(1, 2, 2))).ravel(), [-3j])


def test_parallel_self_supervised_net_beats_zero_filled_by_3db():
  """Trained only on views inside each subject's one R = 2 acquisition (the official protocol)."""
  from experiments.ssfl_recon import config as cfg_mod
  from experiments.ssfl_recon import data as D
  from experiments.ssfl_recon import train as T

  config = cfg_mod.get_config("tiny")
  config.data.update(dict(shape=(24, 24), frames=8, num_train=6))
  config.model.update(dict(iterations=2, filters=4, levels=2))
  subjects = D.training_subjects(config, 2.0)
  test = D.synthetic_subjects(config, 1, 9_000)[0]
  net = T.recon_net(config)
  batch = D.parallel_batch(subjects, config, 0, 2, (2, 4))
  x0, y = T.zero_filled(batch["kspace"], batch["maps"], batch["m1"])
  params = net.init(jax.random.PRNGKey(0), x0, y, batch["maps"], batch["m1"])
  loss_fn = T.make_loss("parallel", net)
  tx = optax.adam(3e-3)
  opt = tx.init(params)

  @jax.jit
  def step(params, opt, batch):
    g = jax.grad(lambda p: loss_fn(p, batch, None)[0])(params)
    u, opt = tx.update(g, opt)
    return optax.apply_updates(params, u), opt

  for s in range(40):
    params, opt = step(params, opt, D.parallel_batch(subjects, config, s, 2, (2, 4)))
  mask = mri.vista_mask(24, 8, 4, seed=123)
  k = (test["kspace"] * mask[:, None, None, :])[None]
  scale = D.intensity_scale(k[0], test["maps"], mask)
  k, maps, m, gt = k / scale, test["maps"][None], mask[None].astype(np.float32), test["gt"] / scale
  zf = np.asarray(T.zero_filled(k, maps, m)[0][0])
  rec = np.asarray(T.reconstruct(net, params, k, maps, m)[0])
  assert mri.psnr(rec, gt) >= mri.psnr(zf, gt) + 3.0, (mri.psnr(rec, gt), mri.psnr(zf, gt))
