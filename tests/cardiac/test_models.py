"""MAE learns to reconstruct masked patches; tabular missing tokens make a missing value's content irrelevant;
the UNETR decoder and the losses have the documented shapes and closed forms."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxmed import cardiac
from jaxmed.synth import heart


def test_mae_loss_falls_well_below_its_start_on_masked_patches():
  c = heart.cardiac_cohort(8, seed=0, size=16, frames=10, num_sax=3)
  x = jnp.asarray(c["cine"])
  mae = cardiac.CineMAE(x.shape[1:], patch=(5, 8, 8), dim=32, depth=2, heads=2, decoder_dim=32, decoder_depth=1)
  params = mae.init(jax.random.PRNGKey(0), x[:2], jax.random.PRNGKey(1))
  tx = optax.adam(3e-3)
  opt = tx.init(params)

  def loss_fn(p, k):
    pred, mask = mae.apply(p, x, k)
    return cardiac.mae_loss(pred, x, mask, (5, 8, 8))

  @jax.jit
  def step(p, o, k):
    loss, g = jax.value_and_grad(loss_fn)(p, k)
    u, o = tx.update(g, o, p)
    return optax.apply_updates(p, u), o, loss

  losses = []
  for i in range(60):
    params, opt, loss = step(params, opt, jax.random.PRNGKey(100 + i))
    losses.append(float(loss))
  assert np.mean(losses[-5:]) < 0.3 * np.mean(losses[:3])
  # predicting every masked pixel as the data mean is a baseline the trained model beats
  pred, mask = mae.apply(params, x, jax.random.PRNGKey(7))
  mean_pred = jnp.full_like(pred, float(x.mean()))
  assert float(cardiac.mae_loss(pred, x, mask, (5, 8, 8))) < float(cardiac.mae_loss(mean_pred, x, mask, (5, 8, 8)))
  dense, none = mae.apply(params, x[:2], jax.random.PRNGKey(7), 0.0)   # no masking: all visible, in order
  assert dense.shape == pred[:2].shape and float(none.sum()) == 0.0


def test_a_missing_value_is_replaced_by_its_mask_token():
  enc = cardiac.TabularEncoder(2, 1, (3,), dim=16, depth=1, heads=2)
  num = jnp.array([[0.5, jnp.nan]])
  params = enc.init(jax.random.PRNGKey(0), num, jnp.array([[1.0]]), jnp.array([[2]]))
  a = enc.apply(params, num, jnp.array([[1.0]]), jnp.array([[2]]))[0]
  b = enc.apply(params, jnp.array([[0.5, jnp.nan]]), jnp.array([[1.0]]), jnp.array([[2]]))[0]
  c = enc.apply(params, jnp.array([[0.5, 3.0]]), jnp.array([[1.0]]), jnp.array([[2]]))[0]
  d = enc.apply(params, num, jnp.array([[jnp.nan]]), jnp.array([[-1]]))[0]
  assert jnp.allclose(a, b) and not jnp.allclose(a, c) and not jnp.allclose(a, d)
  assert bool(jnp.isfinite(d).all())


def test_unetr_decoder_shape_and_losses():
  c = heart.cardiac_cohort(2, seed=0, size=16, frames=5, num_sax=2)
  x = jnp.asarray(c["cine"])
  enc = cardiac.CineEncoder(x.shape[1:], dim=32, depth=3, heads=2)
  ep = enc.init(jax.random.PRNGKey(0), x)
  tokens, _, _, hidden = enc.apply(ep, x)
  dec = cardiac.UNETRDecoder(x.shape[1:], width=8)
  dp = dec.init(jax.random.PRNGKey(1), hidden, tokens[:, 1:], x)
  assert dec.apply(dp, hidden, tokens[:, 1:], x).shape == (*x.shape, 4)
  # weighted BCE at logit 0 is log 2 x (w p + (1 - p)); Huber is 0.5 d^2 inside delta and linear outside
  y = jnp.array([1.0, 0.0, 0.0, 0.0])
  assert np.isclose(float(cardiac.weighted_bce(jnp.zeros(4), y, 3.0)), np.log(2) * (3 * 0.25 + 0.75))
  assert np.isclose(float(cardiac.huber_loss(jnp.array([0.5, 3.0]), jnp.zeros(2))), (0.125 + 2.5) / 2)


def test_mae_loss_equals_its_numpy_reference_in_both_modes():
  rng = np.random.default_rng(0)
  shape, patch = (2, 3, 10, 16, 16), (5, 8, 8)  # B, S, T, H, W -> L = 3 * 2 * 2 * 2 = 24 patches of 320 pixels
  cine = rng.uniform(0, 1, shape).astype(np.float32)
  pred = rng.uniform(0, 1, (2, 24, 320)).astype(np.float32)
  mask = (rng.uniform(size=(2, 24)) < 0.7).astype(np.float32)
  # independent patch extraction: token (s, t, h, w) in that order, pixels (dt, dh, dw) in that order
  target = np.stack([np.stack([cine[b, s, t * 5:(t + 1) * 5, h * 8:(h + 1) * 8, w * 8:(w + 1) * 8].reshape(-1)
                               for s in range(3) for t in range(2) for h in range(2) for w in range(2)])
                     for b in range(2)])
  err = (pred - target) ** 2  # [B, L, P]
  masked_ref = err[mask == 1].mean()  # the official ReconstructionCriterion with mask_loss=True
  all_ref = err.mean()  # mask_loss=False (the official default): every patch, every pixel
  np.testing.assert_allclose(float(cardiac.mae_loss(pred, cine, mask, patch)), masked_ref, rtol=1e-5)
  np.testing.assert_allclose(float(cardiac.mae_loss(pred, cine, mask, patch, mask_loss=False)), all_ref, rtol=1e-5)
  assert abs(masked_ref - all_ref) > 1e-4  # the two modes differ on these inputs


def test_official_decoder_output_is_a_sigmoid():
  x = jnp.asarray(np.random.default_rng(1).uniform(0, 1, (2, 3, 10, 16, 16)), jnp.float32)
  plain = cardiac.CineMAE(x.shape[1:], patch=(5, 8, 8), dim=16, depth=1, heads=2, decoder_dim=16, decoder_depth=1)
  official = cardiac.CineMAE(x.shape[1:], patch=(5, 8, 8), dim=16, depth=1, heads=2, decoder_dim=16,
                             decoder_depth=1, sigmoid=True)
  params = plain.init(jax.random.PRNGKey(0), x, jax.random.PRNGKey(1))  # the same parameters serve both
  a, _ = plain.apply(params, x, jax.random.PRNGKey(2))
  b, _ = official.apply(params, x, jax.random.PRNGKey(2))
  np.testing.assert_allclose(np.asarray(b), np.asarray(jax.nn.sigmoid(a)), rtol=1e-5, atol=1e-6)
