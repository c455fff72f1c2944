"""GRPO advantages, the k3 KL, the clipped loss and its aggregations, against closed forms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmed import rl


def test_group_advantages():
  r = jnp.asarray([1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0])  # two groups of 4
  adv = rl.group_advantages(r, 4)
  g = np.asarray([1.0, 0, 0, 1])
  np.testing.assert_allclose(adv[:4], (g - g.mean()) / (g.std(ddof=1) + 1e-4), rtol=1e-6)
  np.testing.assert_array_equal(adv[4:], 0.0)  # identical rewards carry no signal
  np.testing.assert_allclose(rl.group_advantages(r, 4, scale="none")[:4], g - 0.5)
  np.testing.assert_allclose(rl.group_advantages(r, 4, scale="batch")[:4],
                             (g - 0.5) / (np.std(np.asarray(r), ddof=1) + 1e-4), rtol=1e-6)
  with pytest.raises(ValueError, match="groups of 3"):
    rl.group_advantages(r, 3)


def test_k3_is_nonnegative_zero_at_equality_and_unbiased():
  logp = jnp.linspace(-3, 0, 7)
  assert np.all(np.asarray(rl.k3_kl(logp, logp)) == 0)
  assert np.all(np.asarray(rl.k3_kl(logp, logp[::-1])) >= 0)
  # E_{x~p}[k3] = KL(p || q) for two categoricals
  p, q = jnp.asarray([0.5, 0.3, 0.2]), jnp.asarray([0.2, 0.2, 0.6])
  est = jnp.sum(p * rl.k3_kl(jnp.log(p), jnp.log(q)))
  np.testing.assert_allclose(est, jnp.sum(p * jnp.log(p / q)), rtol=1e-6)


def test_clipped_loss_and_gradient_vanish_outside_the_trust_region():
  old = jnp.zeros((1, 1))
  for adv, logp, clipped in ((1.0, 0.5, True), (1.0, 0.1, False), (-1.0, -0.5, True), (-1.0, 0.5, False)):
    loss, diag = rl.per_token_loss(jnp.full((1, 1), logp), old, jnp.asarray([adv]), beta=0.0)
    ratio = np.exp(logp)
    np.testing.assert_allclose(loss[0, 0], -min(ratio * adv, np.clip(ratio, 0.8, 1.2) * adv), rtol=1e-6)
    g = jax.grad(lambda lp: rl.per_token_loss(lp, old, jnp.asarray([adv]), beta=0.0)[0].sum())(jnp.full((1, 1), logp))
    assert bool(diag["clipped"][0, 0]) == clipped and (float(g[0, 0]) == 0.0) == clipped


def test_aggregations():
  x = jnp.asarray([[1.0, 2.0, 3.0, 0.0], [4.0, 0.0, 0.0, 0.0]])
  m = jnp.asarray([[1, 1, 1, 0], [1, 0, 0, 0]])
  np.testing.assert_allclose(rl.aggregate(x, m, "grpo"), (2.0 + 4.0) / 2)
  np.testing.assert_allclose(rl.aggregate(x, m, "bnpo"), 10.0 / 4)
  np.testing.assert_allclose(rl.aggregate(x, m, "dr_grpo"), 10.0 / 8)
  np.testing.assert_allclose(rl.aggregate(x, m, "dapo", num_active_tokens=jnp.asarray(10.0)), 1.0)
  with pytest.raises(ValueError, match="kind must be one of"):
    rl.aggregate(x, m, "mean")


def test_grpo_loss_beta_zero_needs_no_reference_and_gradient_at_old_policy():
  logp = jnp.log(jnp.asarray([[0.5, 0.25], [0.1, 0.9]]))
  batch = {"mask": jnp.asarray([[1, 1], [1, 0]]), "old_logp": logp, "advantages": jnp.asarray([1.0, -1.0])}
  loss, metrics = rl.grpo_loss(lambda p, b: p, logp, batch, beta=0.0)
  # at ratio 1 the surrogate is -A per token; sequence means then batch mean: (-1 + 1) / 2
  np.testing.assert_allclose(loss, 0.0, atol=1e-7)
  assert float(metrics["clip_fraction"]) == 0.0
  with pytest.raises(ValueError, match="ref_logp"):
    rl.grpo_loss(lambda p, b: p, logp, batch, beta=0.04)
  ref = dict(batch, ref_logp=logp - 0.1)
  loss_kl, m = rl.grpo_loss(lambda p, b: p, logp, ref, beta=0.04)
  assert float(m["kl"]) > 0 and float(loss_kl) > float(loss)


def _numpy_loss(logp, old, ref, adv, mask, beta, eps, kind, num_active=None):
  ratio = np.exp(logp - old)
  surrogate = -np.minimum(ratio * adv[:, None], np.clip(ratio, 1 - eps, 1 + eps) * adv[:, None])
  kl = np.exp(ref - logp) - (ref - logp) - 1
  per_token = (surrogate + beta * kl) * mask
  if kind == "grpo":
    return np.mean(per_token.sum(1) / mask.sum(1))
  if kind == "bnpo":
    return per_token.sum() / mask.sum()
  if kind == "dr_grpo":
    return per_token.sum() / mask.size
  return per_token.sum() / (mask.sum() if num_active is None else num_active)


@pytest.mark.parametrize("kind", rl.AGGREGATIONS)
def test_loss_matches_numpy_reference(kind):
  rng = np.random.default_rng(0)
  b, t = 6, 5
  logp, old, ref = (np.log(rng.uniform(0.05, 1.0, (b, t))) for _ in range(3))
  adv = rng.normal(size=b)
  mask = (rng.uniform(size=(b, t)) > 0.3).astype(np.float64)
  mask[:, 0] = 1
  with jax.enable_x64(True):
    batch = {"mask": jnp.asarray(mask), "old_logp": jnp.asarray(old), "ref_logp": jnp.asarray(ref),
             "advantages": jnp.asarray(adv)}
    loss, _ = rl.grpo_loss(lambda p, bt: p, jnp.asarray(logp), batch, beta=0.04, aggregation=kind,
                           num_active_tokens=jnp.asarray(40.0) if kind == "dapo" else None)
  expected = _numpy_loss(logp, old, ref, adv, mask, 0.04, 0.2, kind, 40.0 if kind == "dapo" else None)
  np.testing.assert_allclose(float(loss), expected, rtol=1e-10)


def test_equal_rewards_give_zero_gradient_and_masked_tokens_get_none():
  rng = np.random.default_rng(1)
  logp = jnp.asarray(np.log(rng.uniform(0.1, 1.0, (4, 3))))
  adv = rl.group_advantages(jnp.ones(4), 4)  # one group, all rewards equal
  batch = {"mask": jnp.ones((4, 3)), "old_logp": logp - 0.05, "advantages": adv}
  for kind in rl.AGGREGATIONS:
    g = jax.grad(lambda lp: rl.grpo_loss(lambda p, bt: p, lp, batch, beta=0.0, aggregation=kind)[0])(logp)
    np.testing.assert_array_equal(np.asarray(g), 0.0)
  mask = jnp.asarray([[1, 1, 0], [1, 0, 0], [1, 1, 1], [0, 0, 0]])
  batch = {"mask": mask, "old_logp": logp, "advantages": jnp.asarray([1.0, -1.0, 0.5, 2.0]),
           "ref_logp": logp - 0.1}
  for kind in rl.AGGREGATIONS:
    g = jax.grad(lambda lp: rl.grpo_loss(lambda p, bt: p, lp, batch, beta=0.04, aggregation=kind)[0])(logp)
    assert np.all(np.asarray(g)[np.asarray(mask) == 0] == 0) and np.any(np.asarray(g)[np.asarray(mask) == 1] != 0)
