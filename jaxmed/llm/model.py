"""A decoder-only transformer covering the Llama, Qwen2 and Qwen3 families (Flax Linen).

  logits = Decoder(config).apply({"params": params}, tokens)                       # [B, T, V]
  logits, cache = Decoder(config).apply({"params": params}, tokens, positions, mask, cache)

Pieces, as in the Hugging Face reference implementations:

* RMSNorm in float32, the result cast back before the weight multiplies it;
* rotary embeddings on the "rotate half" layout, with ``rope_theta`` and the
  Llama-3 frequency scaling;
* grouped-query attention (``num_kv_heads`` key/value heads shared by
  ``num_heads / num_kv_heads`` query heads each) through
  ``jax.nn.dot_product_attention``, logits and softmax in float32;
* SwiGLU MLP ``down(silu(gate(x)) * up(x))``;
* q/k/v biases (Qwen2), per-head RMSNorm of q and k before RoPE (Qwen3);
* tied or untied output embeddings.

Masks are explicit: ``mask`` ``[B, T]`` marks real tokens (1) and padding (0);
it is never inferred from a pad id. Without ``positions``, positions are
``cumsum(mask) - 1`` (``arange(T)`` with no mask), so left padding does not
shift a sequence's rotary phases. ``segment_ids`` ``[B, T]`` pack several
sequences in one row: attention stays within a segment and positions restart.

The KV cache (:func:`init_cache`) is a dict ``{"k", "v": L arrays [B, S, KV, D],
"valid": [B, S] bool, "index": int32}``: a call writes its ``T`` keys at slots
``index .. index+T``; a query at slot ``s`` sees the valid keys at slots
``<= s``. Per-layer arrays (not one stacked array) keep the decode loop's
writes in place and the backward pass through a cache small.

Parameter names follow the HF module tree (``layers_0/self_attn/q_proj``) so
checkpoint conversion is a table; Dense kernels are ``[in, out]`` (HF
``weight`` transposed).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxmed.llm.config import LMConfig
from jaxmed.llm.remat import recompute_layer

Cache = dict[str, jax.Array]
REMAT = {"dots": jax.checkpoint_policies.dots_with_no_batch_dims_saveable}


class RMSNorm(nn.Module):
  eps: float
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    w = self.param("weight", nn.initializers.ones, (x.shape[-1],), jnp.float32)
    x32 = x.astype(jnp.float32)
    y = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
    return w.astype(self.dtype) * y.astype(self.dtype)


def rope_frequencies(config: LMConfig) -> jax.Array:
  """Inverse frequencies ``[D/2]`` (float32), with the Llama-3 scaling when configured."""
  d = config.head_dim
  inv = 1.0 / (config.rope_theta ** (jnp.arange(0, d, 2, dtype=jnp.float32) / d))
  if config.rope_scaling is None:
    return inv
  factor, low, high, orig = config.rope_scaling
  wavelen = 2 * jnp.pi / inv
  low_wavelen, high_wavelen = orig / low, orig / high
  scaled = jnp.where(wavelen > low_wavelen, inv / factor, inv)
  smooth = (orig / wavelen - low) / (high - low)
  mid = (1 - smooth) * scaled / factor + smooth * scaled
  is_mid = (wavelen >= high_wavelen) & (wavelen <= low_wavelen)
  return jnp.where(is_mid, mid, scaled)


def rope_angles(positions: jax.Array, inv_freq: jax.Array, mrope_section=None) -> jax.Array:
  """Rotary angles ``[B, T, D/2]`` from ``positions`` ``[B, T]``, or ``[3, B, T]`` with ``mrope_section``.

  Multimodal RoPE (Qwen2-VL): the ``D/2`` frequencies are cut into three
  consecutive sections of ``mrope_section`` sizes, rotated by the temporal,
  height and width position respectively. With the three positions equal
  this is the 1D rotary embedding.
  """
  if mrope_section is None:
    return positions.astype(jnp.float32)[..., None] * inv_freq
  if positions.ndim != 3 or positions.shape[0] != 3:
    raise ValueError(f"rope_angles: M-RoPE needs positions [3, B, T], got shape {positions.shape}")
  if sum(mrope_section) != inv_freq.shape[0]:
    raise ValueError(f"rope_angles: mrope_section {tuple(mrope_section)} must sum to head_dim / 2 = {inv_freq.shape[0]}")
  section = np.repeat(np.arange(len(mrope_section)), mrope_section) % 3  # which position rotates frequency j
  per_axis = positions.astype(jnp.float32)[..., None] * inv_freq  # [3, B, T, D/2]
  return jnp.where(section == 0, per_axis[0], jnp.where(section == 1, per_axis[1], per_axis[2]))


def apply_rope(x: jax.Array, positions: jax.Array, inv_freq: jax.Array, mrope_section=None) -> jax.Array:
  """Rotate ``x`` ``[B, T, H, D]`` by ``positions`` ``[B, T]`` (``[3, B, T]`` for M-RoPE; "rotate half" layout)."""
  return rotate(x, rope_angles(positions, inv_freq, mrope_section)[..., None, :])


def rotate(x: jax.Array, angles: jax.Array) -> jax.Array:
  """``x`` ``[..., D]`` rotated by ``angles`` ``[..., D/2]`` (broadcast) in the "rotate half" layout, in float32."""
  angles = jnp.concatenate([angles, angles], axis=-1)
  cos, sin = jnp.cos(angles), jnp.sin(angles)
  x32 = x.astype(jnp.float32)
  half = x.shape[-1] // 2
  rotated = jnp.concatenate([-x32[..., half:], x32[..., :half]], axis=-1)
  return (x32 * cos + rotated * sin).astype(x.dtype)


class Attention(nn.Module):
  config: LMConfig

  @nn.compact
  def __call__(self, x, positions, key_valid, query_slots, layer_cache, same_segment=None):
    c = self.config
    dtype = jnp.dtype(c.dtype)
    b, t, _ = x.shape
    dense = lambda n, name, bias: nn.Dense(n, use_bias=bias, dtype=dtype, name=name)  # noqa: E731
    q = dense(c.num_heads * c.head_dim, "q_proj", c.qkv_bias)(x).reshape(b, t, c.num_heads, c.head_dim)
    k = dense(c.num_kv_heads * c.head_dim, "k_proj", c.qkv_bias)(x).reshape(b, t, c.num_kv_heads, c.head_dim)
    v = dense(c.num_kv_heads * c.head_dim, "v_proj", c.qkv_bias)(x).reshape(b, t, c.num_kv_heads, c.head_dim)
    if c.qk_norm:
      q = RMSNorm(c.rms_norm_eps, dtype, name="q_norm")(q)
      k = RMSNorm(c.rms_norm_eps, dtype, name="k_norm")(k)
    inv_freq = rope_frequencies(c)
    q, k = (apply_rope(q, positions, inv_freq, c.mrope_section),
            apply_rope(k, positions, inv_freq, c.mrope_section))
    if layer_cache is not None:
      # write the T new keys / values into this layer's [B, S, KV, D] cache (in place inside a jitted loop)
      ck, cv, index = layer_cache
      k = jax.lax.dynamic_update_slice_in_dim(ck, k.astype(ck.dtype), index, axis=1)
      v = jax.lax.dynamic_update_slice_in_dim(cv, v.astype(cv.dtype), index, axis=1)
    new_cache = (k, v)
    s = k.shape[1]
    allowed = (jnp.arange(s)[None, None, :] <= query_slots[:, :, None]) & key_valid[:, None, :]  # [B, T, S]
    if same_segment is not None:
      allowed = allowed & same_segment
    # grouped-query attention, logits and softmax in float32; "cudnn" selects the fused flash kernel on GPU
    out = jax.nn.dot_product_attention(q.astype(dtype), k.astype(dtype), v.astype(dtype), mask=allowed[:, None],
                                       implementation=None if c.attention == "xla" else c.attention)
    out = out.reshape(b, t, c.num_heads * c.head_dim)
    return dense(c.hidden_size, "o_proj", False)(out), new_cache


class MLP(nn.Module):
  config: LMConfig

  @nn.compact
  def __call__(self, x):
    c = self.config
    dtype = jnp.dtype(c.dtype)
    gate = nn.Dense(c.intermediate_size, use_bias=False, dtype=dtype, name="gate_proj")(x)
    up = nn.Dense(c.intermediate_size, use_bias=False, dtype=dtype, name="up_proj")(x)
    return nn.Dense(c.hidden_size, use_bias=False, dtype=dtype, name="down_proj")(nn.silu(gate) * up)


class DecoderLayer(nn.Module):
  config: LMConfig

  @nn.compact
  def __call__(self, x, positions, key_valid, query_slots, layer_cache, same_segment=None):
    c = self.config
    dtype = jnp.dtype(c.dtype)
    h, kv = Attention(c, name="self_attn")(RMSNorm(c.rms_norm_eps, dtype, name="input_layernorm")(x), positions,
                                           key_valid, query_slots, layer_cache, same_segment)
    x = x + h
    x = x + MLP(c, name="mlp")(RMSNorm(c.rms_norm_eps, dtype, name="post_attention_layernorm")(x))
    return x, kv


def _recomputed_layer(config: LMConfig):
  """One decoder layer as ``(params, *args) -> out`` recomputed in the backward pass (:mod:`jaxmed.llm.remat`)."""
  return recompute_layer(lambda params, *args: DecoderLayer(config).apply({"params": params}, *args))


def default_positions(mask: jax.Array) -> jax.Array:
  """``cumsum(mask) - 1`` clipped at 0: ``[B, T]`` positions that skip left padding."""
  return jnp.maximum(jnp.cumsum(mask.astype(jnp.int32), axis=-1) - 1, 0)


def segment_positions(segment_ids: jax.Array, mask: jax.Array) -> jax.Array:
  """Positions that restart at every segment of packed sequences: ``[B, T]``.

  ``segment_ids`` ``[B, T]`` label contiguous runs (one per packed sequence);
  a token's position counts the real tokens before it in its own segment.
  """
  m = mask.astype(jnp.int32)
  count = jnp.cumsum(m, axis=-1)
  starts = jnp.concatenate([jnp.ones_like(segment_ids[:, :1], bool), segment_ids[:, 1:] != segment_ids[:, :-1]], 1)
  before = jax.lax.cummax(jnp.where(starts, count - m, 0), axis=1)  # real tokens before the segment started
  return jnp.maximum(count - before - 1, 0)


def init_cache(config: LMConfig, batch: int, max_len: int, dtype: Any = None) -> Cache:
  """An empty KV cache for ``max_len`` tokens (one ``[B, S, KV, D]`` array per layer)."""
  dtype = jnp.dtype(dtype or config.dtype)
  shape = (batch, max_len, config.num_kv_heads, config.head_dim)
  return {"k": tuple(jnp.zeros(shape, dtype) for _ in range(config.num_layers)),
          "v": tuple(jnp.zeros(shape, dtype) for _ in range(config.num_layers)),
          "valid": jnp.zeros((batch, max_len), bool), "index": jnp.zeros((), jnp.int32)}


def repeat_cache(cache: Cache, repeats: int) -> Cache:
  """Each row of the cache repeated ``repeats`` times (``[n, ...] -> [n * repeats, ...]``, copies contiguous)."""
  rep = lambda x: jnp.repeat(x, repeats, axis=0)  # noqa: E731
  return {"k": tuple(map(rep, cache["k"])), "v": tuple(map(rep, cache["v"])), "valid": rep(cache["valid"]),
          "index": cache["index"]}


class Decoder(nn.Module):
  """``(tokens [B, T], positions [B, T]?, mask [B, T]?, cache?) -> logits [B, T, V]`` (and the cache).

  ``embeds`` ``[B, T, hidden]`` replaces the token embeddings, everywhere or
  only where ``embeds_mask`` ``[B, T]`` is true (a vision-language model's
  image features at its image-token slots); with
  ``config.mrope_section`` the positions are ``[3, B, T]`` (temporal,
  height, width), and default to three copies of the 1D positions.
  ``last_only``: the logits of the last position only (``[B, 1, V]``; a
  sampler's prefill needs no others). ``return_hidden``: the final-norm
  hidden states ``[B, T, hidden]`` instead of logits; :func:`output_head`
  gives the matrix that maps them to logits.
  """
  config: LMConfig

  @property
  def text_config(self) -> LMConfig:
    """The language model's config (what a KV cache is sized from)."""
    return self.config

  @nn.compact
  def __call__(self, tokens, positions=None, mask=None, cache: Cache | None = None, segment_ids=None,
               embeds=None, embeds_mask=None, last_only: bool = False, return_hidden: bool = False):
    c = self.config
    dtype = jnp.dtype(c.dtype)
    b, t = tokens.shape
    mask = jnp.ones((b, t), bool) if mask is None else mask.astype(bool)
    if segment_ids is not None and cache is not None:
      raise ValueError("Decoder: segment_ids (packed sequences) are for training passes, not with a KV cache")
    if positions is None:
      positions = default_positions(mask) if segment_ids is None else segment_positions(segment_ids, mask)
      if c.mrope_section is not None:
        positions = jnp.broadcast_to(positions, (3, b, t))
    embed = nn.Embed(c.vocab_size, c.hidden_size, dtype=dtype, name="embed_tokens")
    x = embed(tokens)
    if embeds is not None:
      embeds = embeds.astype(dtype)
      x = embeds if embeds_mask is None else jnp.where(embeds_mask[..., None], embeds, x)
    same_segment = None if segment_ids is None else segment_ids[:, :, None] == segment_ids[:, None, :]
    if cache is None:
      key_valid, query_slots = mask, jnp.broadcast_to(jnp.arange(t), (b, t))
    else:
      index = cache["index"]
      key_valid = jax.lax.dynamic_update_slice_in_dim(cache["valid"], mask, index, axis=1)
      query_slots = jnp.broadcast_to(index + jnp.arange(t), (b, t))
    ck, cv = [], []
    # remat (LMConfig.remat): "full" keeps each layer's input only and recomputes the layer once its
    # output's gradient exists (jaxmed.llm.remat); "dots" is jax.checkpoint with that policy
    layer_cls = nn.remat(DecoderLayer, policy=REMAT[c.remat]) if c.remat == "dots" else DecoderLayer
    recompute = c.remat == "full" and not self.is_initializing()
    for i in range(c.num_layers):
      layer_cache = None if cache is None else (cache["k"][i], cache["v"][i], cache["index"])
      args = (x, positions, key_valid, query_slots, layer_cache, same_segment)
      if recompute:
        x, (k, v) = _recomputed_layer(c)(self.variables["params"][f"layers_{i}"], *args)
      else:
        x, (k, v) = layer_cls(c, name=f"layers_{i}")(*args)
      ck.append(k)
      cv.append(v)
    ck, cv = tuple(ck), tuple(cv)
    if last_only:
      x = x[:, -1:]
    x = RMSNorm(c.rms_norm_eps, dtype, name="norm")(x)
    if return_hidden:  # the caller applies the head (e.g. chunked over the vocabulary, at chosen positions)
      return x if cache is None else (x, {"k": ck, "v": cv, "valid": key_valid, "index": cache["index"] + t})
    if c.tie_embeddings:
      logits = embed.attend(x)
    else:
      logits = nn.Dense(c.vocab_size, use_bias=False, dtype=dtype, name="lm_head")(x)
    logits = logits.astype(jnp.float32)
    if cache is None:
      return logits
    return logits, {"k": ck, "v": cv, "valid": key_valid, "index": cache["index"] + t}


def output_head(config: LMConfig, params: Any) -> jax.Array:
  """The ``[hidden, V]`` matrix of the LM head (the transposed embeddings when they are tied)."""
  if config.tie_embeddings:
    return params["embed_tokens"]["embedding"].T
  return params["lm_head"]["kernel"]


def with_options(model: Any, **options) -> Any:
  """``model`` (a :class:`Decoder` or a VLM with a ``config.text``) with :class:`LMConfig` fields replaced,
  e.g. ``remat="full"``, ``attention="cudnn"``, ``dtype="bfloat16"``; its params are unchanged. A VLM's
  vision tower takes ``remat`` too (any policy but ``"none"`` recomputes its blocks) and ``dtype``."""
  c = model.config
  if hasattr(c, "text"):
    vision = {k: (v != "none" if k == "remat" else v) for k, v in options.items() if k in ("remat", "dtype")}
    return type(model)(dataclasses.replace(c, text=dataclasses.replace(c.text, **options),
                                           vision=dataclasses.replace(c.vision, **vision)))
  return type(model)(dataclasses.replace(c, **options))
