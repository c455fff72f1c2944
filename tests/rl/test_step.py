"""The GRPO pieces together: trainer log-probs equal the sampler's, and GRPO raises a reward it can learn."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxmed import llm, rl
from jaxmed import core
from jaxmed.rl.loop import make_grpo_step, place_state
from jaxmed.rl.step import lm_logp_fn, rollout

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


def _update_once(logp_fn, tx, params, batch, mesh=None, **kw):
  """One jitted GRPO update on a fresh TrainState (on ``mesh``: the state keeps the params' layout)."""
  state, sharding = place_state(params, tx, 0, mesh)
  update = make_grpo_step(logp_fn, tx, state_sharding=sharding if mesh is not None else None, mesh=mesh, **kw)
  if mesh is not None:
    batch = jax.device_put(dict(batch), core.batch_sharding(mesh))
  state, metrics = update(state, batch, jax.random.PRNGKey(0))
  return state.params, metrics


def test_grpo_learns_a_token_reward():
  model, params, prompts = _setup()
  group = 8
  tx = optax.adam(3e-2)
  state, _ = place_state(params, tx, 0)
  update = make_grpo_step(lm_logp_fn(model, 1.0, group_size=group), tx, mu=2, aggregation="dapo")
  curve = []
  for step in range(20):
    batch = rollout(model, state.params, prompts, jax.random.PRNGKey(100 + step), group_size=group,
                    max_new_tokens=6)
    rewards = jnp.mean(batch["completion"] == TARGET, axis=1).astype(jnp.float32)  # fraction of TARGET tokens
    batch["advantages"] = rl.group_advantages(rewards, group)
    state, metrics = update(state, batch, jax.random.PRNGKey(step))
    curve.append(float(rewards.mean()))
    assert np.isfinite(float(metrics["loss"]))
  assert int(state.step) == 20
  assert curve[0] < 0.2 and np.mean(curve[-3:]) > 0.8, curve  # chance is 1/16


def test_on_policy_ratio_is_exactly_one_and_mu_2_uses_the_trainers_logprobs():
  model, params, prompts = _setup()
  batch = rollout(model, params, prompts, jax.random.PRNGKey(3), group_size=4, max_new_tokens=5)
  batch["advantages"] = rl.group_advantages(jnp.arange(16, dtype=jnp.float32) % 3, 4)
  forged = dict(batch, old_logp=batch["old_logp"] + 5.0)   # a sampler far off the trainer: must not matter
  tx = optax.sgd(0.5)
  p1, m1 = _update_once(lm_logp_fn(model), tx, params, batch)
  p2, m2 = _update_once(lm_logp_fn(model), tx, params, forged)
  assert float(m1["clip_fraction"]) == 0.0 and float(m1["clip_low"]) == 0.0 and float(m1["clip_high"]) == 0.0
  for a, b in zip(jax.tree.leaves(p1), jax.tree.leaves(p2)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  q1, _ = _update_once(lm_logp_fn(model), tx, params, batch, mu=2)
  q2, _ = _update_once(lm_logp_fn(model), tx, params, forged, mu=2)
  for a, b in zip(jax.tree.leaves(q1), jax.tree.leaves(q2)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  moved = max(float(jnp.abs(a - b).max()) for a, b in zip(jax.tree.leaves(q1), jax.tree.leaves(p1)))
  assert moved > 0   # the second step did something


def test_sharded_update_equals_single_device_and_keeps_fsdp_shardings():
  model, params, prompts = _setup()
  mesh = core.make_mesh({"data": 2, "fsdp": 4})  # the 8 simulated CPU devices (tests/conftest.py)
  batch = rollout(model, params, prompts, jax.random.PRNGKey(3), group_size=4, max_new_tokens=5)
  batch["advantages"] = rl.group_advantages(jnp.arange(16, dtype=jnp.float32) % 3, 4)
  batch["ref_logp"] = batch["old_logp"] - 0.1
  # SGD, not Adam: Adam's first step is lr * sign(g), so a gradient entry that is ~0 up to float
  # rounding flips sign between reduction orders and the params differ by up to 2 lr.
  tx = optax.sgd(0.5)
  p1, m1 = _update_once(lm_logp_fn(model), tx, params, batch, mu=2, beta=0.04)
  shardings = llm.param_shardings(params, mesh)
  sharded_params = jax.device_put(params, shardings)
  p2, m2 = _update_once(lm_logp_fn(model), tx, sharded_params, batch, mesh=mesh, mu=2, beta=0.04)
  assert any(not s.is_fully_replicated for s in jax.tree.leaves(shardings))  # FSDP really splits something
  for a, b, s in zip(jax.tree.leaves(p1), jax.tree.leaves(p2), jax.tree.leaves(shardings)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=2e-5)
    assert b.sharding.is_equivalent_to(s, b.ndim)
  np.testing.assert_allclose(float(m1["loss"]), float(m2["loss"]), atol=1e-6)


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


def test_stop_at_strings_cuts_after_the_stop_and_keeps_the_rest(tmp_path):
  tok = llm.train_bpe_tokenizer(["<think>a b</think><answer>B</answer> trailing words here"] * 30,
                                str(tmp_path / "tok"), vocab_size=300)
  text = "<think>a b</think><answer>B</answer> trailing words here"
  ids = tok(text)["input_ids"]
  other = tok("<think>no stop here</think>")["input_ids"]
  width = max(len(ids), len(other)) + 2
  comp = np.zeros((2, width), np.int32)
  mask = np.zeros((2, width), bool)
  comp[0, :len(ids)], mask[0, :len(ids)] = ids, True
  comp[1, :len(other)], mask[1, :len(other)] = other, True
  new_mask, texts = rl.stop_at_strings(tok, comp, mask, ("</answer>",), prefix="P:")
  assert texts[0] == "P:<think>a b</think><answer>B</answer>"
  assert tok.decode(comp[0][new_mask[0]]) == "<think>a b</think><answer>B</answer>"
  assert new_mask[0].sum() < mask[0].sum() and new_mask[0, :new_mask[0].sum()].all()  # still a prefix
  np.testing.assert_array_equal(new_mask[1], mask[1])                                # no stop: unchanged
  assert texts[1] == "P:<think>no stop here</think>"
