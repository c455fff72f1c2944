"""The shared-prefix, vocabulary-chunked log-probs equal the plain path: values, gradients and entropy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmed import llm
from jaxmed.rl.logprobs import chunked_logp, shared_prefix_logp
from jaxmed.rl.step import lm_logp_fn, rollout


@pytest.mark.parametrize("family,tie", [("llama", True), ("qwen2", False)])
def test_shared_prefix_logp_and_grads_equal_plain_path(family, tie):
  cfg = llm.LMConfig(family=family, vocab_size=37, hidden_size=32, intermediate_size=48, num_layers=2, num_heads=4,
                     num_kv_heads=2, head_dim=8, qkv_bias=family == "qwen2", tie_embeddings=tie)
  model = llm.Decoder(cfg)
  params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 1), jnp.int32))["params"]
  prompts = [[5, 6, 7, 8, 9], [10, 11], [12, 13, 14]]  # different lengths: left padding inside the prefix
  batch = rollout(model, params, prompts, jax.random.PRNGKey(1), group_size=4, max_new_tokens=7, temperature=0.8,
                  eos_ids=(3, 4, 20), pad_to=6)
  mask = np.asarray(batch["mask"])
  assert mask.sum() > 0 and not mask.all()  # some rows ended early: masked completion tokens are exercised
  plain = lm_logp_fn(model, 0.8)
  shared = lambda p, b: shared_prefix_logp(model, p, b, group_size=4, temperature=0.8, chunk=10)  # noqa: E731
  np.testing.assert_allclose(np.asarray(shared(params, batch)), np.asarray(plain(params, batch)), atol=1e-5)
  np.testing.assert_allclose(np.asarray(shared(params, batch))[mask], np.asarray(batch["old_logp"])[mask], atol=1e-5)
  weights = jax.random.normal(jax.random.PRNGKey(2), mask.shape)
  g_plain = jax.grad(lambda p: jnp.sum(plain(p, batch) * weights))(params)
  g_shared = jax.grad(lambda p: jnp.sum(shared(p, batch) * weights))(params)
  for a, b in zip(jax.tree.leaves(g_plain), jax.tree.leaves(g_shared)):  # 1e-5 of the leaf's scale (float32 sums)
    a, b = np.asarray(a), np.asarray(b)
    assert np.abs(a - b).max() <= 1e-5 * max(1.0, np.abs(a).max()), np.abs(a - b).max()


def test_chunked_logp_matches_full_softmax_and_entropy():
  h = jax.random.normal(jax.random.PRNGKey(0), (2, 3, 8))
  w = jax.random.normal(jax.random.PRNGKey(1), (8, 23))
  targets = jnp.asarray([[0, 5, 22], [7, 7, 1]])
  logits = jnp.einsum("bth,hv->btv", h, w) / 0.7
  full = jax.nn.log_softmax(logits, -1)
  lp, ent = chunked_logp(h, w, targets, temperature=0.7, chunk=5)   # 23 columns: the last chunk is padded
  np.testing.assert_allclose(lp, jnp.take_along_axis(full, targets[..., None], -1)[..., 0], atol=1e-5)
  np.testing.assert_allclose(ent, -jnp.sum(jnp.exp(full) * full, -1), atol=1e-5)
