"""Sampler: log-probs agree with token_logprobs, padding never changes logits, EOS masking, filters, sharding."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmed import core, llm
from jaxmed.llm.sampler import filter_logits, generate, token_logprobs

FIXTURE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "hf", "qwen3")


@pytest.fixture(scope="module")
def lm():
  return llm.load_pretrained(FIXTURE)


def _left_pad(seqs):
  tokens, mask = llm.left_pad(seqs, 0)
  return jnp.asarray(tokens), jnp.asarray(mask)


def test_sampled_logprobs_equal_token_logprobs(lm):
  model, params = lm
  prompt, mask = _left_pad([[5, 17, 33, 8, 90], [44, 12], [7, 7, 7, 201]])
  for kw in (dict(greedy=True), dict(temperature=0.7, top_k=20), dict(temperature=1.3, top_p=0.9)):
    out = generate(model, params, prompt, mask, jax.random.PRNGKey(3), max_new_tokens=12, **kw)
    full = jnp.concatenate([prompt, out["tokens"]], axis=1)
    full_mask = jnp.concatenate([mask, out["completion_mask"].astype(mask.dtype)], axis=1)
    lp = token_logprobs(model, params, full, full_mask, kw.get("temperature", 1.0))[:, prompt.shape[1] - 1:]
    np.testing.assert_allclose(np.asarray(lp), np.asarray(out["logprobs"]), atol=1e-5)


def test_padding_and_batch_composition_do_not_change_logits(lm):
  model, params = lm
  seq = [11, 23, 5, 77, 140, 9]
  alone = model.apply({"params": params}, jnp.asarray([seq]))[0]
  for others in ([[3] * 11], [[1, 2], [3] * 9, [100] * 4]):
    tokens, mask = _left_pad([seq] + others)
    logits = model.apply({"params": params}, tokens, mask=mask)[0, -len(seq):]
    np.testing.assert_allclose(np.asarray(logits), np.asarray(alone), atol=1e-5)


def test_generation_stops_at_eos_and_masks_the_rest(lm):
  model, params = lm
  prompt, mask = _left_pad([[5, 17, 33], [44, 12, 9, 9]])
  greedy = generate(model, params, prompt, mask, jax.random.PRNGKey(0), max_new_tokens=10, greedy=True)
  eos = int(greedy["tokens"][0, 3])  # make a token sequence 0 produces at step 3 the EOS
  out = generate(model, params, prompt, mask, jax.random.PRNGKey(0), max_new_tokens=10, greedy=True, eos_ids=(eos,),
                 pad_id=0)
  tokens, live = np.asarray(out["tokens"]), np.asarray(out["completion_mask"])
  for b in range(2):
    hits = np.where(tokens[b] == eos)[0]
    stop = hits[0] + 1 if len(hits) else 10
    assert live[b, :stop].all() and not live[b, stop:].any()
    assert (tokens[b, stop:] == 0).all() and (np.asarray(out["logprobs"])[b, stop:] == 0).all()
  assert live[0].sum() == 4


def test_top_k_and_top_p_filters():
  logits = jnp.log(jnp.asarray([[0.5, 0.2, 0.15, 0.1, 0.05]]))
  kept = lambda f: np.asarray(f > jnp.finfo(f.dtype).min / 2)[0]  # noqa: E731
  np.testing.assert_array_equal(kept(filter_logits(logits, top_k=2)), [1, 1, 0, 0, 0])
  np.testing.assert_array_equal(kept(filter_logits(logits, top_p=0.6)), [1, 1, 0, 0, 0])  # 0.5 < 0.6 <= 0.7
  np.testing.assert_array_equal(kept(filter_logits(logits, top_p=0.5)), [1, 0, 0, 0, 0])
  np.testing.assert_array_equal(kept(filter_logits(logits, top_p=0.86)), [1, 1, 1, 1, 0])


def test_sharded_generation_equals_single_device(lm):
  model, params = lm
  assert jax.device_count() == 8
  mesh = core.make_mesh({"data": -1, "fsdp": 1, "model": 1})
  _, sharded = llm.load_pretrained(FIXTURE, mesh=mesh)
  q = sharded["layers_0"]["self_attn"]["q_proj"]["kernel"]
  assert q.sharding.shard_shape(q.shape) == (q.shape[0] // 8, q.shape[1])  # really split (FSDP), not replicated
  prompt, mask = _left_pad([[5, 17, 33, 8], [44, 12], [7, 201, 3], [9]] * 2)
  kw = dict(max_new_tokens=8, temperature=0.8, top_k=50)
  a = generate(model, params, prompt, mask, jax.random.PRNGKey(1), **kw)
  b = generate(model, sharded, prompt, mask, jax.random.PRNGKey(1), **kw)  # jit follows the params' shardings
  np.testing.assert_array_equal(np.asarray(a["tokens"]), np.asarray(b["tokens"]))
  np.testing.assert_allclose(np.asarray(a["logprobs"]), np.asarray(b["logprobs"]), atol=1e-5)


def test_packed_segments_equal_separate_sequences(lm):
  model, params = lm
  a, b = [11, 23, 5, 77], [140, 9, 31, 8, 2, 66]
  packed = jnp.asarray([a + b + [0, 0]])
  segments = jnp.asarray([[0] * len(a) + [1] * len(b) + [2, 2]])
  mask = jnp.asarray([[1] * (len(a) + len(b)) + [0, 0]])
  np.testing.assert_array_equal(llm.segment_positions(segments, mask)[0, :10], [0, 1, 2, 3, 0, 1, 2, 3, 4, 5])
  logits = model.apply({"params": params}, packed, mask=mask, segment_ids=segments)[0]
  alone_a = model.apply({"params": params}, jnp.asarray([a]))[0]
  alone_b = model.apply({"params": params}, jnp.asarray([b]))[0]
  np.testing.assert_allclose(np.asarray(logits[:len(a)]), np.asarray(alone_a), atol=1e-5)
  np.testing.assert_allclose(np.asarray(logits[len(a):len(a) + len(b)]), np.asarray(alone_b), atol=1e-5)


def test_sharded_token_logprobs_equal_single_device(lm):
  model, params = lm
  mesh = core.make_mesh({"data": -1, "fsdp": 1, "model": 1})
  _, sharded = llm.load_pretrained(FIXTURE, mesh=mesh)
  tokens, mask = _left_pad([[5, 17, 33, 8, 90, 4], [44, 12, 3], [7, 7, 201], [9, 10]] * 2)
  np.testing.assert_allclose(np.asarray(token_logprobs(model, sharded, tokens, mask)),
                             np.asarray(token_logprobs(model, params, tokens, mask)), atol=1e-5)


def test_pack_documents_and_causal_lm_loss(lm):
  from jaxmed.llm.pretrain import causal_lm_loss, pack_documents

  model, params = lm
  docs = [[5, 6, 7, 8], [9, 10], [11, 12, 13], [14, 15, 16, 17, 18, 19, 20]]
  packed = pack_documents(docs, 8)
  assert packed["tokens"].shape[1] == 8 and packed["mask"].sum() == sum(map(len, docs))
  # packed loss equals the token-weighted mean of each document's own loss
  loss, _ = causal_lm_loss(model, params, {k: jnp.asarray(v) for k, v in packed.items()})
  total, count = 0.0, 0
  for d in docs:
    one = {"tokens": jnp.asarray([d]), "mask": jnp.ones((1, len(d)), jnp.int32),
           "segment_ids": jnp.ones((1, len(d)), jnp.int32)}
    total += float(causal_lm_loss(model, params, one)[0]) * (len(d) - 1)
    count += len(d) - 1
  np.testing.assert_allclose(float(loss), total / count, rtol=1e-5)


def test_causal_lm_loss_mask_keeps_context_and_counts_only_marked_targets(lm):
  from jaxmed.llm.pretrain import causal_lm_loss

  model, params = lm
  tokens = jnp.asarray([[5, 17, 33, 8, 90, 4, 12, 3]])
  ones = jnp.ones_like(tokens)
  batch = {"tokens": tokens, "mask": ones, "segment_ids": ones}
  full, _ = causal_lm_loss(model, params, batch)
  np.testing.assert_allclose(float(causal_lm_loss(model, params, {**batch, "loss_mask": ones})[0]), float(full))
  # only targets 5 and 6 count, each still predicted from the whole prefix
  marked = jnp.zeros_like(tokens).at[0, 5:7].set(1)
  logp = jax.nn.log_softmax(model.apply({"params": params}, tokens)[0, :-1], -1)
  want = -(logp[4, 4] + logp[5, 12]) / 2
  np.testing.assert_allclose(float(causal_lm_loss(model, params, {**batch, "loss_mask": marked})[0]),
                             float(want), rtol=1e-5)


def test_num_samples_prefills_once_and_equals_repeated_prompts(lm):
  """G samples per prompt from one prefill and a repeated cache = the same prompt written G times."""
  model, params = lm
  prompt, mask = _left_pad([[5, 17, 33, 8, 90], [44, 12]])
  rep = lambda x: jnp.repeat(x, 3, axis=0)  # noqa: E731
  for kw in (dict(greedy=True), dict(temperature=1.0)):
    once = generate(model, params, prompt, mask, jax.random.PRNGKey(4), max_new_tokens=8, num_samples=3, **kw)
    many = generate(model, params, rep(prompt), rep(mask), jax.random.PRNGKey(4), max_new_tokens=8, **kw)
    np.testing.assert_array_equal(np.asarray(once["tokens"]), np.asarray(many["tokens"]))
    np.testing.assert_allclose(np.asarray(once["logprobs"]), np.asarray(many["logprobs"]), atol=1e-5)
  assert len({tuple(r) for r in np.asarray(once["tokens"])[:3]}) > 1   # the samples of one prompt differ


def test_rollout_splits_rows_over_the_mesh_and_samples_the_same():
  from jaxmed import rl

  cfg = llm.LMConfig(family="llama", vocab_size=40, hidden_size=32, intermediate_size=64, num_layers=2, num_heads=4,
                     num_kv_heads=2, head_dim=8)
  model = llm.Decoder(cfg)
  params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 1), jnp.int32))["params"]
  mesh = core.make_mesh({"data": 2, "fsdp": 4, "model": 1})
  sharded = jax.device_put(params, llm.param_shardings(params, mesh))   # FSDP params
  prompts = [[5, 6, 7], [8, 9], [10, 11, 12, 13], [14]]
  kw = dict(group_size=4, max_new_tokens=6, temperature=1.0, eos_ids=(3,), pad_to=4)
  plain = rl.rollout(model, params, prompts, jax.random.PRNGKey(1), **kw)
  split = rl.rollout(model, sharded, prompts, jax.random.PRNGKey(1), mesh=mesh, **kw)
  np.testing.assert_array_equal(np.asarray(split["completion"]), np.asarray(plain["completion"]))
  np.testing.assert_allclose(np.asarray(split["old_logp"]), np.asarray(plain["old_logp"]), atol=1e-5)
  # each device holds 16 / 8 = 2 rows of the decoded tokens
  assert {s.data.shape for s in split["completion"].addressable_shards} == {(2, 6)}
