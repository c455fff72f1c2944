"""The memory-bounded update (micro-batches, remat, chunked head) equals the plain one, and jits once."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxmed import core, llm, rl
from jaxmed.rl.accumulate import merge_micro, split_micro

CFG = llm.LMConfig(family="qwen2", vocab_size=37, hidden_size=32, intermediate_size=48, num_layers=2, num_heads=4,
                   num_kv_heads=2, head_dim=8, qkv_bias=True)
G = 4


def _batch():
  model = llm.Decoder(CFG)
  params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 1), jnp.int32))["params"]
  prompts = [[5, 6, 7, 8, 9], [10, 11], [12, 13, 14], [15, 16, 17, 18]]
  batch = rl.rollout(model, params, prompts, jax.random.PRNGKey(1), group_size=G, max_new_tokens=7,
                     temperature=0.8, eos_ids=(3, 4, 20), pad_to=6)
  batch["advantages"] = rl.group_advantages(jax.random.normal(jax.random.PRNGKey(2), (16,)), G)
  # a reference policy other than the policy, so the KL term has a gradient
  ref = jax.tree.map(lambda x: x + 0.05 * jax.random.normal(jax.random.PRNGKey(3), x.shape), params)
  batch["ref_logp"] = rl.lm_logp_fn(model, 0.8)(ref, batch)
  return model, params, batch


def test_split_micro_round_trips_and_keeps_groups_whole():
  x = jnp.arange(24 * 2).reshape(24, 2)
  y = split_micro(x, 3, 4)   # 6 groups of 4 rows, 3 micro-batches of 8 rows: groups (0, 3), (1, 4), (2, 5)
  assert y.shape == (3, 8, 2)
  np.testing.assert_array_equal(y[1, :, 0] // 8, [1] * 4 + [4] * 4)
  np.testing.assert_array_equal(merge_micro(y, 4), x)


@pytest.mark.parametrize("aggregation", ["grpo", "bnpo", "dr_grpo", "dapo"])
def test_micro_batched_remat_chunked_update_equals_plain(aggregation):
  model, params, batch = _batch()
  mask = np.asarray(batch["mask"])
  assert 0 < mask.sum() < mask.size   # rows of different lengths: the token means are exercised
  plain_fn = rl.lm_logp_fn(model, 0.8)   # one pass over prompt + completion, full [B, T, V] logits
  bounded = llm.Decoder(dataclasses.replace(CFG, remat="full"))
  bounded_fn = rl.lm_logp_fn(bounded, 0.8, group_size=G, chunk=10, with_entropy=True)
  kw = dict(aggregation=aggregation, beta=0.04, epsilon=0.2)
  (l0, m0), g0 = jax.jit(lambda p: rl.accumulated_value_and_grad(plain_fn, p, batch, **kw))(params)
  (l1, m1), g1 = jax.jit(lambda p: rl.accumulated_value_and_grad(bounded_fn, p, batch, micro_batch_size=8,
                                                                 group_size=G, **kw))(params)
  assert abs(float(l0)) > 1e-3
  np.testing.assert_allclose(float(l1), float(l0), rtol=1e-5, atol=1e-6)
  for k in ("kl", "clip_fraction"):
    np.testing.assert_allclose(float(m1[k]), float(m0[k]), rtol=1e-5, atol=1e-7)
  for a, b in zip(jax.tree.leaves(g0), jax.tree.leaves(g1)):
    a, b = np.asarray(a), np.asarray(b)
    assert np.abs(a - b).max() <= 1e-5 * max(1.0, np.abs(a).max()), np.abs(a - b).max()


def test_micro_map_equals_one_pass_and_bad_sizes_are_named():
  model, params, batch = _batch()
  fn = rl.lm_logp_fn(model, 0.8, group_size=G, chunk=10)
  np.testing.assert_allclose(rl.micro_map(fn, params, batch, micro_batch_size=4, group_size=G), fn(params, batch),
                             atol=1e-5)
  with pytest.raises(ValueError, match="micro_batch_size=6 must be a multiple of group_size=4"):
    rl.micro_map(fn, params, batch, micro_batch_size=6, group_size=G)


def test_update_jits_once_across_steps_on_a_mesh():
  model, params, batch = _batch()
  mesh = core.make_mesh({"data": 2, "fsdp": 4, "model": 1})
  params = jax.device_put(params, llm.param_shardings(params, mesh))
  tx = optax.adam(1e-3)
  state, sharding = rl.place_state(params, tx, 0, mesh)
  inner = rl.lm_logp_fn(llm.Decoder(dataclasses.replace(CFG, remat="full")), 0.8, group_size=G, chunk=10)
  traces = []

  def fn(p, b):   # runs in Python only while the update is traced
    traces.append(1)
    return inner(p, b)

  update = rl.make_grpo_step(fn, tx, mu=2, beta=0.04, micro_batch_size=8, group_size=G, state_sharding=sharding,
                             mesh=mesh)
  batch = jax.device_put({k: v for k, v in batch.items() if k != "old_logp"}, core.batch_sharding(mesh))
  losses = []
  for i in range(3):
    state, m = update(state, batch, jax.random.PRNGKey(i))
    losses.append(float(m["loss"]))
    if i == 0:
      first = len(traces)
  assert first > 0 and len(traces) == first   # traced (and compiled) once, for every step
  assert int(state.step) == 3 and np.isfinite(losses).all()
  leaf = state.params["layers_0"]["mlp"]["gate_proj"]["kernel"]
  assert leaf.sharding == sharding.params["layers_0"]["mlp"]["gate_proj"]["kernel"]   # the layout is kept


def test_bf16_compute_keeps_float32_master_params_and_adam():
  model, params, batch = _batch()
  bf16 = llm.with_options(model, dtype="bfloat16", remat="full")
  tx = optax.adam(1e-3)
  state, _ = rl.place_state(params, tx, 0)
  update = rl.make_grpo_step(rl.lm_logp_fn(bf16, 0.8, group_size=G, chunk=10), tx, beta=0.04, micro_batch_size=8,
                             group_size=G)
  state, m = update(state, {k: v for k, v in batch.items() if k != "old_logp"}, jax.random.PRNGKey(0))
  assert np.isfinite(float(m["loss"])) and float(m["grad_norm"]) > 0
  assert {x.dtype for x in jax.tree.leaves(state.params)} == {jnp.dtype("float32")}
  assert {x.dtype for x in jax.tree.leaves(state.opt_state) if x.ndim} == {jnp.dtype("float32")}
  moved = max(float(jnp.abs(a - b).max()) for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(params)))
  assert 0 < moved < 2e-3   # one Adam step of lr 1e-3, applied to the float32 masters
