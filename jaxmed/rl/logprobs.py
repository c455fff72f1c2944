"""Completion log-probs for the GRPO update: each prompt encoded once per group, the head chunked over V.

In a GRPO batch the ``G`` completions of a prompt share it, and prompts are
usually longer than completions. :func:`shared_prefix_logp` runs the decoder
over each distinct prompt once (``[n, P]``, ``n = B / G``), repeats its KV
cache ``G`` times, and runs the completions ``[B, T]`` against it with
explicit positions (``prompt length + t``). Gradients reach the prompt's
keys and values through the repeated cache, so log-probs and gradients equal
those of the plain path (``jaxmed.llm.token_logprobs`` on the concatenated
sequence; tested to 1e-5).

The LM head is applied only where a completion token is predicted (the last
prompt position and the first ``T - 1`` completion positions) and in chunks
of the vocabulary (:func:`chunked_logp`): a running log-sum-exp over the
chunks, under ``jax.checkpoint`` so that the backward pass recomputes each
chunk's logits instead of storing ``[B, T, V]``. The same pass gives the
per-token entropy of ``softmax(logits / temperature)`` (no gradient).
"""

from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp

from jaxmed.llm.model import default_positions, init_cache, output_head, repeat_cache


def chunked_logp(hidden: jax.Array, head: jax.Array, targets: jax.Array, *, temperature: float = 1.0,
                 chunk: int = 8192, dtype: Any = None) -> tuple[jax.Array, jax.Array]:
  """``log softmax(hidden @ head / temperature)[targets]`` and the entropy, both ``[B, T]``.

  Args:
    hidden: ``[B, T, H]`` final-norm hidden states.
    head: ``[H, V]`` output matrix (:func:`jaxmed.llm.model.output_head`).
    targets: ``[B, T]`` token ids whose log-probs are wanted.
    chunk: vocabulary columns per piece (the last piece is padded and masked).
    dtype: the matmul's input dtype (the model's compute dtype); logits are float32.
  """
  dtype = jnp.dtype(dtype or hidden.dtype)
  h = hidden.astype(dtype)
  w = head.astype(dtype)
  vocab = w.shape[1]
  chunk = min(chunk, vocab)
  n = -(-vocab // chunk)
  w = jnp.pad(w, ((0, 0), (0, n * chunk - vocab))).reshape(w.shape[0], n, chunk).transpose(1, 0, 2)
  target_logit = jnp.einsum("bth,bth->bt", h, jnp.take(head.astype(dtype).T, targets, axis=0),
                            preferred_element_type=jnp.float32).astype(dtype).astype(jnp.float32) / temperature

  @jax.checkpoint
  def piece(carry, xs):
    m, s, t = carry
    w_c, j = xs
    logits = jnp.einsum("bth,hv->btv", h, w_c, preferred_element_type=jnp.float32).astype(dtype)
    logits = logits.astype(jnp.float32) / temperature
    logits = jnp.where(j * chunk + jnp.arange(chunk) < vocab, logits, -jnp.inf)
    m_new = jnp.maximum(m, logits.max(-1))
    scale = jnp.exp(m - m_new)
    e = jnp.exp(logits - m_new[..., None])
    s = s * scale + e.sum(-1)
    t = t * scale + jnp.sum(e * jnp.where(jnp.isfinite(logits), logits, 0.0), -1)
    return (m_new, s, t), None

  b, tt = targets.shape
  init = (jnp.full((b, tt), -jnp.inf, jnp.float32), jnp.zeros((b, tt), jnp.float32), jnp.zeros((b, tt), jnp.float32))
  (m, s, t), _ = jax.lax.scan(piece, init, (w, jnp.arange(n)))
  lse = m + jnp.log(s)
  entropy = jax.lax.stop_gradient(lse - t / s)
  return target_logit - lse, entropy


def shared_prefix_logp(model, params: Any, batch: Mapping[str, jax.Array], *, group_size: int,
                       temperature: float = 1.0, chunk: int = 8192, with_entropy: bool = False,
                       prompt_positions=None, completion_positions=None, prompt_inputs: Mapping[str, Any] | None = None):
  """``[B, T]`` log-probs of ``batch["completion"]``, each prompt encoded once for its ``group_size`` rows.

  ``batch``: ``prompt``/``prompt_mask`` ``[B, P]`` (left-padded; the ``G``
  rows of a group carry the same prompt, as :func:`jaxmed.rl.rollout` makes
  them), ``completion``/``mask`` ``[B, T]``. Entries whose mask is 0 are 0.
  With ``with_entropy``, also returns the per-token entropy ``[B, T]``.

  A model with extra inputs (a VLM) passes them for the ``n = B / G`` distinct prompts:
  ``prompt_positions`` ``[n, P]`` or ``[3, n, P]`` (M-RoPE), ``completion_positions`` ``[B, T]`` or
  ``[3, B, T]`` and ``prompt_inputs`` (keyword inputs of the prompt pass, e.g. pixels); by default the
  positions are counted from the prompt mask.
  """
  text = getattr(model, "text_config", model.config)   # a VLM's language model, or the decoder's own config
  prompt, prompt_mask = batch["prompt"][::group_size], batch["prompt_mask"][::group_size].astype(bool)
  completion, mask = batch["completion"], batch["mask"].astype(bool)
  n, p = prompt.shape
  b, t = completion.shape
  if b != n * group_size:
    raise ValueError(f"shared_prefix_logp: {b} completions do not split into groups of {group_size}")
  variables = {"params": params}
  cache = init_cache(text, n, p + t)
  if prompt_positions is None:
    prompt_positions = default_positions(prompt_mask)
  hidden_p, cache = model.apply(variables, prompt, prompt_positions, prompt_mask, cache, return_hidden=True,
                                **(prompt_inputs or {}))
  rep = lambda x: jnp.repeat(x, group_size, axis=0)  # noqa: E731
  cache = repeat_cache(cache, group_size)
  if completion_positions is None:
    completion_positions = rep(prompt_mask.sum(-1).astype(jnp.int32))[:, None] + jnp.arange(t)[None]
  hidden_c, _ = model.apply(variables, completion, completion_positions, mask, cache, return_hidden=True)
  # the hidden state that predicts completion token j: the prompt's last position for j = 0, else token j - 1
  hidden = jnp.concatenate([rep(hidden_p[:, -1:]), hidden_c[:, :-1]], axis=1)
  head = output_head(text, params["language_model"] if "language_model" in params else params)
  logp, entropy = chunked_logp(hidden, head, completion, temperature=temperature, chunk=chunk, dtype=text.dtype)
  logp = jnp.where(mask, logp, 0.0)
  return (logp, jnp.where(mask, entropy, 0.0)) if with_entropy else logp
