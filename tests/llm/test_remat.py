"""Per-layer remat: the same gradients as no remat, and the compiled backward pass really holds fewer
activations (XLA's CPU backend ignores a plain jax.checkpoint's saving; jaxmed.llm.remat does not)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmed import llm

CFG = llm.LMConfig(family="qwen3", vocab_size=61, hidden_size=64, intermediate_size=256, num_layers=6, num_heads=4,
                   num_kv_heads=2, head_dim=16, qk_norm=True)


def _loss(model):
  def loss(params, tokens, mask):
    logits = model.apply({"params": params}, tokens, mask=mask)
    return jnp.sum(jax.nn.log_softmax(logits)[..., 7] * mask)
  return loss


@pytest.mark.parametrize("remat", ["full", "dots"])
def test_remat_gradients_equal_plain(remat):
  params = llm.Decoder(CFG).init(jax.random.PRNGKey(0), jnp.zeros((1, 1), jnp.int32))["params"]
  tokens = jax.random.randint(jax.random.PRNGKey(1), (3, 12), 0, 61)
  mask = jnp.asarray(np.arange(12)[None] >= np.array([[0], [3], [5]]))   # left padding
  g0 = jax.grad(_loss(llm.Decoder(CFG)))(params, tokens, mask)
  g1 = jax.jit(jax.grad(_loss(llm.Decoder(dataclasses.replace(CFG, remat=remat)))))(params, tokens, mask)
  for a, b in zip(jax.tree.leaves(g0), jax.tree.leaves(g1)):
    np.testing.assert_allclose(np.asarray(b), np.asarray(a), atol=1e-5 * max(1.0, float(np.abs(a).max())))


def test_full_remat_bounds_the_compiled_backward_pass():
  def temporaries(remat):
    model = llm.Decoder(dataclasses.replace(CFG, remat=remat))
    params = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros((1, 1), jnp.int32)))["params"]
    tokens = jax.ShapeDtypeStruct((4, 256), jnp.int32)
    mask = jax.ShapeDtypeStruct((4, 256), jnp.bool_)
    compiled = jax.jit(jax.grad(_loss(model))).lower(params, tokens, mask).compile()
    return compiled.memory_analysis().temp_size_in_bytes
  plain, full = temporaries("none"), temporaries("full")
  assert full < 0.5 * plain, (full, plain)
