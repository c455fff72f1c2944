"""The GRPO pieces together: trainer log-probs equal the sampler's, and GRPO raises a reward it can learn."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxmed import llm, rl
from jaxmed.rl.step import lm_logp_fn, make_update, rollout

CONFIG = llm.LMConfig(family="qwen2", vocab_size=16, hidden_size=32, intermediate_size=64, num_layers=1, num_heads=2,
                      num_kv_heads=1, head_dim=16, qkv_bias=True, tie_embeddings=True)
TARGET = 3


def _setup():
  model = llm.Decoder(CONFIG)
  params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 1), jnp.int32))["params"]
  prompts = [[5, 6, 7], [8, 9], [10, 11, 12, 13], [14]]
  return model, params, prompts


def test_trainer_logprobs_equal_sampler_logprobs():
  model, params, prompts = _setup()
  batch = rollout(model, params, prompts, jax.random.PRNGKey(1), group_size=4, max_new_tokens=6, temperature=0.7,
                  eos_ids=(TARGET,))
  lp = lm_logp_fn(model, 0.7)(params, batch)
  m = np.asarray(batch["mask"])
  assert m.sum() > 0 and not m.all()  # some sequences stopped at the EOS
  np.testing.assert_allclose(np.asarray(lp)[m], np.asarray(batch["old_logp"])[m], atol=1e-5)


def test_grpo_learns_a_token_reward():
  model, params, prompts = _setup()
  group = 8
  update = make_update(lm_logp_fn(model, 1.0), optax.adam(3e-2), mu=2, beta=0.0, aggregation="dapo")
  opt_state = optax.adam(3e-2).init(params)
  curve = []
  for step in range(20):
    batch = rollout(model, params, prompts, jax.random.PRNGKey(100 + step), group_size=group, max_new_tokens=6)
    rewards = jnp.mean(batch["completion"] == TARGET, axis=1).astype(jnp.float32)  # fraction of TARGET tokens
    batch["advantages"] = rl.group_advantages(rewards, group)
    params, opt_state, metrics = update(params, opt_state, batch)
    curve.append(float(rewards.mean()))
    assert np.isfinite(float(metrics["loss"]))
  assert curve[0] < 0.2 and np.mean(curve[-3:]) > 0.8, curve  # chance is 1/16


def test_sharded_update_equals_single_device_and_keeps_fsdp_shardings():
  from jaxmed import core

  model, params, prompts = _setup()
  mesh = core.make_mesh({"data": 2, "fsdp": 4})  # the 8 simulated CPU devices (tests/conftest.py)
  batch = rollout(model, params, prompts, jax.random.PRNGKey(3), group_size=4, max_new_tokens=5)
  batch["advantages"] = rl.group_advantages(jnp.arange(16, dtype=jnp.float32) % 3, 4)
  batch["ref_logp"] = batch["old_logp"] - 0.1
  # SGD, not Adam: Adam's first step is lr * sign(g), so a gradient entry that is ~0 up to float
  # rounding flips sign between reduction orders and the params differ by up to 2 lr.
  tx = optax.sgd(0.5)
  single = make_update(lm_logp_fn(model), tx, mu=2)
  p1, _, m1 = single(params, tx.init(params), batch)
  shardings = llm.param_shardings(params, mesh)
  sharded_params = jax.device_put(params, shardings)
  p2, o2, m2 = make_update(lm_logp_fn(model), tx, mu=2, mesh=mesh)(sharded_params, tx.init(sharded_params), batch)
  assert any(not s.is_fully_replicated for s in jax.tree.leaves(shardings))  # FSDP really splits something
  for a, b, s in zip(jax.tree.leaves(p1), jax.tree.leaves(p2), jax.tree.leaves(shardings)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=2e-5)
    assert b.sharding == s
  np.testing.assert_allclose(float(m1["loss"]), float(m2["loss"]), atol=1e-6)
  bad = {k: v[:6] for k, v in batch.items()}
  with np.testing.assert_raises_regex(ValueError, "divide by the mesh's 8 batch shards"):
    make_update(lm_logp_fn(model), tx, mesh=mesh)(sharded_params, o2, bad)


def test_step_metrics_against_numpy():
  mask = np.array([[1, 1, 1, 0], [1, 0, 0, 0]], np.int32)
  old_logp = np.array([[-1.0, -2.0, -3.0, -9.0], [-0.5, -9.0, -9.0, -9.0]], np.float32)
  rewards = np.array([1.5, 0.0], np.float32)
  scores = np.array([[1.0, 0.5], [0.0, 0.0]], np.float32)
  upd = {"loss": 0.1, "kl": 0.01, "clip_fraction": 0.0, "grad_norm": 2.0}
  row = rl.step_metrics({"mask": mask, "old_logp": old_logp}, rewards, scores, ("partial", "format"), upd,
                        t_rollout=2.0, t_update=0.5, mu=2)
  assert row["reward_mean"] == 0.75 and row["reward/format_mean"] == 0.25 and row["reward/partial_std"] == 0.5
  assert row["completion_len_mean"] == 2.0 and row["completion_len_max"] == 3.0
  np.testing.assert_allclose(row["entropy_proxy"], 6.5 / 4)           # masked tokens do not count
  assert row["tokens_per_s_rollout"] == 2.0 and row["tokens_per_s_update"] == 16.0 and row["kl"] == 0.01


def test_score_and_update_weights_rewards_and_equal_groups_leave_params():
  model, params, prompts = _setup()
  batch = rollout(model, params, prompts[:2], jax.random.PRNGKey(3), group_size=4, max_new_tokens=4)
  ex = {"answer": "B", "options": {"A": "x", "B": "y"}}
  texts = ["<think>t</think><answer>B</answer>"] * 4 + ["<think>t</think><answer>A</answer>"] * 4  # equal per group
  tx = optax.sgd(1.0)
  update = make_update(lm_logp_fn(model), tx, beta=0.0)
  new, _, row, rewards = rl.score_and_update(update, params, tx.init(params), batch, texts, [ex] * 8,
                                             {"accuracy": 2.0, "format": 0.5}, group_size=4, t_rollout=1.0)
  np.testing.assert_allclose(rewards, [2.5] * 4 + [0.5] * 4)
  assert row["reward/accuracy_mean"] == 0.5 and row["reward/format_mean"] == 1.0 and row["reward_mean"] == 1.5
  for a, b in zip(jax.tree.leaves(new), jax.tree.leaves(params)):   # zero advantages: no policy gradient
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-7)
