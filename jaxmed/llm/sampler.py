"""Batched sampling with a KV cache, and per-token log-probs of given completions.

:func:`generate` takes left-padded prompts ``[B, P]`` with their mask, runs a
jitted prefill over the prompts (logits at the last position only), then a
jitted decode loop (``lax.while_loop``) that feeds one token per step through
a preallocated KV cache, written in place, and stops when every row has
ended. Each sequence stops at its first EOS: the EOS itself is kept, and
everything after it is padding with completion mask 0.

Both are generic over the model's extra inputs: ``model_inputs`` (a dict,
e.g. a VLM's ``pixel_values``) goes to the prefill / the forward pass, and
``positions`` may be M-RoPE's ``[3, B, T]``; decoded tokens then take
``1D position + position_offset`` on all three axes (Qwen2-VL's
``rope_deltas``).

Log-probs are those of the sampled tokens under ``softmax(logits /
temperature)`` (before top-k/top-p filtering), the same quantity
:func:`token_logprobs` computes for a whole sequence in one forward pass, so
a GRPO ratio compares like with like.
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxmed.llm.model import Decoder, default_positions, init_cache, repeat_cache


def left_pad(sequences: Sequence[Sequence[int]], pad_id: int, width: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """Token lists -> left-padded ``tokens`` and ``mask`` ``[B, P]`` (int32), ``P = max(width, longest)``.

  A fixed ``width`` keeps shapes static across batches, so jitted sampling
  and updates compile once instead of once per prompt length.
  """
  width = max([width] + [len(s) for s in sequences])
  tokens = np.full((len(sequences), width), pad_id, np.int32)
  mask = np.zeros((len(sequences), width), np.int32)
  for i, s in enumerate(sequences):
    if len(s):
      tokens[i, width - len(s):], mask[i, width - len(s):] = s, 1
  return tokens, mask


def filter_logits(logits: jax.Array, *, top_k: int = 0, top_p: float = 1.0) -> jax.Array:
  """Sets logits outside the top-k / nucleus (top-p) to -inf: ``[B, V] -> [B, V]``."""
  neg = jnp.finfo(logits.dtype).min
  if top_k > 0:
    kth = jax.lax.top_k(logits, top_k)[0][:, -1:]
    logits = jnp.where(logits < kth, neg, logits)
  if top_p < 1.0:
    sorted_logits = jnp.sort(logits, axis=-1)[:, ::-1]
    cum = jnp.cumsum(jax.nn.softmax(sorted_logits, axis=-1), axis=-1)
    keep_sorted = (cum - jax.nn.softmax(sorted_logits, axis=-1)) < top_p  # the first token is always kept
    threshold = jnp.min(jnp.where(keep_sorted, sorted_logits, jnp.inf), axis=-1, keepdims=True)
    logits = jnp.where(logits < threshold, neg, logits)
  return logits


def _pick(logits, rng, temperature, top_k, top_p, greedy):
  """Next tokens ``[B]`` and their log-probs under ``softmax(logits / temperature)``."""
  scaled = logits / (1.0 if greedy else temperature)
  logp = jax.nn.log_softmax(scaled, axis=-1)
  if greedy:
    token = jnp.argmax(logits, axis=-1)
  else:
    token = jax.random.categorical(rng, filter_logits(scaled, top_k=top_k, top_p=top_p), axis=-1)
  return token.astype(jnp.int32), jnp.take_along_axis(logp, token[:, None], axis=-1)[:, 0]


def shard_rows(tree: Any, rows: jax.sharding.Sharding | None, n: int) -> Any:
  """Leaves whose leading axis has ``n`` rows constrained to ``rows`` (a no-op without it, or when the mesh's
  row shards do not divide ``n``)."""
  if rows is None or n % int(np.prod([rows.mesh.shape[a] for a in jax.tree.leaves(rows.spec[0])])):
    return tree
  return jax.tree.map(lambda x: jax.lax.with_sharding_constraint(x, rows) if x.ndim and x.shape[0] == n else x,
                      tree)


@functools.partial(jax.jit, static_argnames=("model", "max_new_tokens", "top_k", "top_p", "greedy", "eos_ids", "pad_id",
                                             "num_samples", "rows"))
def generate(model: Decoder, params: Any, prompt: jax.Array, prompt_mask: jax.Array, rng: jax.Array, *,
             max_new_tokens: int, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
             greedy: bool = False, eos_ids: tuple[int, ...] = (), pad_id: int = 0, prompt_positions=None,
             position_offset=None, model_inputs: dict | None = None, num_samples: int = 1,
             rows: jax.sharding.NamedSharding | None = None) -> dict[str, jax.Array]:
  """Samples ``max_new_tokens`` tokens after left-padded ``prompt`` ``[n, P]`` (``prompt_mask`` 1 = real).

  ``prompt_positions`` ``[n, P]`` or ``[3, n, P]`` (default from the mask),
  ``position_offset`` ``[n]`` and ``model_inputs`` (prefill only) as in the
  module docstring. ``num_samples``: completions per prompt; each prompt is
  prefilled once and its KV cache repeated, and the ``B = n * num_samples``
  output rows keep a prompt's samples contiguous (a GRPO group).
  ``rows``: a sharding of the leading axis (e.g. ``jaxmed.core.batch_sharding(mesh)``): the prompts, the
  KV cache and the decode loop's state are split by rows over it, so each device decodes its own rows
  against FSDP-sharded params (ignored where the row count does not divide).

  Returns:
    ``tokens`` ``[B, N]`` (``pad_id`` after a sequence's first EOS),
    ``completion_mask`` ``[B, N]`` (1 up to and including the first EOS),
    ``logprobs`` ``[B, N]`` (0 where the mask is 0).
  """
  n, p = prompt.shape
  b = n * num_samples
  prompt_mask = prompt_mask.astype(bool)
  cache = shard_rows(init_cache(model.text_config, n, p + max_new_tokens), rows, n)
  prompt, prompt_mask = shard_rows((prompt, prompt_mask), rows, n)
  positions = default_positions(prompt_mask) if prompt_positions is None else prompt_positions
  logits, cache = model.apply({"params": params}, prompt, positions, prompt_mask, cache, last_only=True,
                              **(model_inputs or {}))
  last_logits = logits[:, -1]  # left padding: the last column is every prompt's last real token
  pos = jnp.sum(prompt_mask, axis=-1).astype(jnp.int32)  # the next token's position
  if position_offset is not None:
    pos = pos + position_offset.astype(jnp.int32)
  if num_samples > 1:
    cache = repeat_cache(cache, num_samples)
    last_logits, pos = jnp.repeat(last_logits, num_samples, axis=0), jnp.repeat(pos, num_samples, axis=0)
  cache, last_logits, pos = shard_rows((cache, last_logits, pos), rows, b)
  axes = positions.shape[0] if positions.ndim == 3 else 0  # M-RoPE: the same position on every axis
  eos = jnp.asarray(eos_ids if eos_ids else (-1,), jnp.int32)
  keys = jax.random.split(rng, max_new_tokens)

  def step(carry):
    i, cache, last_logits, pos, done, tokens, live_out, logps = carry
    token, logp = _pick(last_logits, keys[i], temperature, top_k, top_p, greedy)
    live = ~done
    token = jnp.where(live, token, pad_id)
    done = done | (live & jnp.isin(token, eos))
    step_pos = jnp.broadcast_to(pos[:, None], (axes, b, 1)) if axes else pos[:, None]
    logits, cache = model.apply({"params": params}, token[:, None], step_pos, live[:, None], cache)
    cache = shard_rows(cache, rows, b)
    tokens = jax.lax.dynamic_update_slice_in_dim(tokens, token[:, None], i, axis=1)
    live_out = jax.lax.dynamic_update_slice_in_dim(live_out, live[:, None], i, axis=1)
    logps = jax.lax.dynamic_update_slice_in_dim(logps, jnp.where(live, logp, 0.0)[:, None], i, axis=1)
    return i + 1, cache, logits[:, 0], pos + 1, done, tokens, live_out, logps

  # stops as soon as every row has ended; the untouched tail is padding (mask 0)
  init = (jnp.zeros((), jnp.int32), cache, last_logits, pos, jnp.zeros((b,), bool),
          jnp.full((b, max_new_tokens), pad_id, jnp.int32), jnp.zeros((b, max_new_tokens), bool),
          jnp.zeros((b, max_new_tokens), jnp.float32))
  init = shard_rows(init, rows, b)
  out = jax.lax.while_loop(lambda c: (c[0] < max_new_tokens) & ~jnp.all(c[4]), step, init)
  return {"tokens": out[5], "completion_mask": out[6], "logprobs": out[7]}


@functools.partial(jax.jit, static_argnames=("model",))
def token_logprobs(model: Decoder, params: Any, tokens: jax.Array, mask: jax.Array,
                   temperature: float = 1.0, positions=None, model_inputs: dict | None = None) -> jax.Array:
  """``log p(tokens[:, t] | tokens[:, <t])`` under ``softmax(logits / temperature)``: ``[B, T-1]`` for ``t >= 1``.

  ``mask`` ``[B, T]`` marks real tokens (left and inner padding allowed);
  entries whose target is padding are 0. ``positions`` (default from the
  mask) and ``model_inputs`` as in the module docstring.
  """
  mask = mask.astype(bool)
  positions = default_positions(mask) if positions is None else positions
  logits = model.apply({"params": params}, tokens, positions, mask, **(model_inputs or {}))
  logp = jax.nn.log_softmax(logits[:, :-1] / temperature, axis=-1)
  out = jnp.take_along_axis(logp, tokens[:, 1:, None], axis=-1)[..., 0]
  return jnp.where(mask[:, 1:], out, 0.0)
