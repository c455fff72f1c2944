"""Chronos-Bolt (amazon/chronos-bolt-*) in Flax: a T5 encoder-decoder on patches, loaded from its directory.

``ChronosBoltModelForForecasting`` of the ``chronos-forecasting`` package, forward pass:

1. instance norm of the context (NaN-aware mean and population standard deviation; a zero scale becomes 1e-5);
2. patches of ``input_patch_size`` (the context left-padded with NaN to a multiple), NaNs zeroed, each patch
   concatenated with its observed-mask and embedded by a residual block (``hidden -> act -> output + residual``);
   a patch with no observed value is masked out of attention; with ``use_reg_token`` a learned [REG] embedding
   (``shared`` row 1) is appended;
3. a T5 encoder: pre-RMSNorm self-attention without score scaling plus bucketed relative-position biases (layer
   0's table, shared by all layers; bidirectional), pre-RMSNorm feed-forward (``relu`` or gated-GELU), a final
   RMSNorm;
4. a T5 decoder run on one start token (``shared`` row 0): self-attention (one position), cross-attention to the
   encoder, feed-forward, final RMSNorm;
5. a residual block to ``num_quantiles x prediction_length`` values, de-normalised with the instance statistics.

:func:`load_chronos_bolt` reads ``config.json`` and ``model.safetensors`` from a local directory (no download,
no pickle) and checks every tensor's shape. The last hidden state of the encoder (``features``) is what a
linear probe on frozen Chronos-Bolt features uses.
"""

from __future__ import annotations

import json
import math
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxmed.io.torch_checkpoint import tensor_getter


def relative_position_bucket(relative: np.ndarray, bidirectional: bool, num_buckets: int = 32,
                             max_distance: int = 128) -> np.ndarray:
  """T5's bucket of ``key - query`` offsets: exact below ``num_buckets / 4`` (``/ 2`` one-sided), then log-spaced
  up to ``max_distance``; bidirectional tables spend half the buckets on positive offsets."""
  relative = np.asarray(relative)
  bucket = np.zeros_like(relative)
  if bidirectional:
    num_buckets //= 2
    bucket += (relative > 0) * num_buckets
    relative = np.abs(relative)
  else:
    relative = -np.minimum(relative, 0)
  exact = num_buckets // 2
  with np.errstate(divide="ignore"):
    large = exact + (np.log(np.maximum(relative, 1) / exact) / math.log(max_distance / exact)
                     * (num_buckets - exact)).astype(relative.dtype)
  return bucket + np.where(relative < exact, relative, np.minimum(large, num_buckets - 1))


ACTIVATIONS = {"relu": nn.relu, "gelu": lambda t: nn.gelu(t, approximate=False),
               "gelu_new": lambda t: nn.gelu(t, approximate=True), "silu": nn.silu}


class RMSNorm(nn.Module):
  epsilon: float = 1e-6

  @nn.compact
  def __call__(self, x):
    w = self.param("weight", nn.initializers.ones, (x.shape[-1],))
    return x * jax.lax.rsqrt(jnp.mean(x * x, -1, keepdims=True) + self.epsilon) * w


class T5Attention(nn.Module):
  heads: int
  d_kv: int

  @nn.compact
  def __call__(self, x, memory, bias):
    b, n, d = x.shape
    split = lambda t: t.reshape(b, -1, self.heads, self.d_kv)  # noqa: E731
    q = split(nn.Dense(self.heads * self.d_kv, use_bias=False, name="q")(x))
    k = split(nn.Dense(self.heads * self.d_kv, use_bias=False, name="k")(memory))
    v = split(nn.Dense(self.heads * self.d_kv, use_bias=False, name="v")(memory))
    scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) + bias
    out = jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(scores, -1), v).reshape(b, n, -1)
    return nn.Dense(d, use_bias=False, name="o")(out)


class FeedForward(nn.Module):
  d_ff: int
  gated: bool
  act: str = "relu"

  @nn.compact
  def __call__(self, x):
    act = ACTIVATIONS[self.act]
    if self.gated:                       # gated: act(wi_0 x) * wi_1 x
      h = act(nn.Dense(self.d_ff, use_bias=False, name="wi_0")(x)) * nn.Dense(self.d_ff, use_bias=False,
                                                                               name="wi_1")(x)
    else:
      h = act(nn.Dense(self.d_ff, use_bias=False, name="wi")(x))
    return nn.Dense(x.shape[-1], use_bias=False, name="wo")(h)


class ResidualBlock(nn.Module):
  hidden: int
  out: int
  act: str = "relu"

  @nn.compact
  def __call__(self, x):
    act = ACTIVATIONS[self.act]
    return (nn.Dense(self.out, name="output_layer")(act(nn.Dense(self.hidden, name="hidden_layer")(x)))
            + nn.Dense(self.out, name="residual_layer")(x))


class ChronosBolt(nn.Module):
  """``context [B, L]`` (NaN = missing) -> ``(quantiles [B, Q, H], encoder states [B, P (+1), d_model])``."""
  d_model: int
  d_kv: int
  heads: int
  d_ff: int
  layers: int
  decoder_layers: int
  patch: int
  horizon: int
  num_quantiles: int
  gated: bool = False
  act: str = "relu"
  use_reg_token: bool = True
  num_buckets: int = 32
  max_distance: int = 128
  epsilon: float = 1e-6

  @nn.compact
  def __call__(self, context: jax.Array):
    b, length = context.shape
    observed = ~jnp.isnan(context)
    count = observed.sum(-1, keepdims=True)
    loc = jnp.where(count > 0, jnp.nansum(context, -1, keepdims=True) / jnp.maximum(count, 1), 0.0)
    var = jnp.nansum((context - loc) ** 2, -1, keepdims=True) / jnp.maximum(count, 1)
    scale = jnp.where(count > 0, jnp.sqrt(var), 1.0)
    scale = jnp.where(scale == 0, 1e-5, scale)
    x = (context - loc) / scale
    pad = (-length) % self.patch
    x = jnp.concatenate([jnp.full((b, pad), jnp.nan, x.dtype), x], -1).reshape(b, -1, self.patch)
    m = jnp.concatenate([jnp.zeros((b, pad), bool), observed], -1).reshape(b, -1, self.patch)
    x = jnp.where(m, x, 0.0)
    attend = m.any(-1)
    shared = self.param("shared", nn.initializers.normal(1.0), (2 if self.use_reg_token else 1, self.d_model))
    h = ResidualBlock(self.d_ff, self.d_model, self.act, name="input_patch_embedding")(
        jnp.concatenate([x, m.astype(x.dtype)], -1))
    if self.use_reg_token:
      h = jnp.concatenate([h, jnp.broadcast_to(shared[1], (b, 1, self.d_model))], 1)
      attend = jnp.concatenate([attend, jnp.ones((b, 1), bool)], 1)
    n = h.shape[1]
    mask_bias = jnp.where(attend, 0.0, jnp.finfo(jnp.float32).min)[:, None, None, :]
    rel = relative_position_bucket(np.arange(n)[None] - np.arange(n)[:, None], True, self.num_buckets,
                                   self.max_distance)
    table = self.param("encoder_relative_attention_bias", nn.initializers.normal(1.0), (self.num_buckets, self.heads))
    bias = table[rel].transpose(2, 0, 1)[None] + mask_bias
    for i in range(self.layers):
      y = RMSNorm(self.epsilon, name=f"encoder_{i}_attn_norm")(h)
      h = h + T5Attention(self.heads, self.d_kv, name=f"encoder_{i}_attn")(y, y, bias)
      h = h + FeedForward(self.d_ff, self.gated, self.act, name=f"encoder_{i}_ff")(RMSNorm(self.epsilon,
                                                                                  name=f"encoder_{i}_ff_norm")(h))
    enc = RMSNorm(self.epsilon, name="encoder_final_norm")(h)
    dec_table = self.param("decoder_relative_attention_bias", nn.initializers.normal(1.0),
                           (self.num_buckets, self.heads))
    self_bias = dec_table[relative_position_bucket(np.zeros((1, 1), int), False, self.num_buckets,
                                                   self.max_distance)].transpose(2, 0, 1)[None]
    d = jnp.broadcast_to(shared[0], (b, 1, self.d_model))
    for i in range(self.decoder_layers):
      y = RMSNorm(self.epsilon, name=f"decoder_{i}_self_norm")(d)
      d = d + T5Attention(self.heads, self.d_kv, name=f"decoder_{i}_self")(y, y, self_bias)
      y = RMSNorm(self.epsilon, name=f"decoder_{i}_cross_norm")(d)
      d = d + T5Attention(self.heads, self.d_kv, name=f"decoder_{i}_cross")(y, enc, mask_bias)
      d = d + FeedForward(self.d_ff, self.gated, self.act, name=f"decoder_{i}_ff")(RMSNorm(self.epsilon,
                                                                                  name=f"decoder_{i}_ff_norm")(d))
    d = RMSNorm(self.epsilon, name="decoder_final_norm")(d)
    q = ResidualBlock(self.d_ff, self.num_quantiles * self.horizon, self.act, name="output_patch_embedding")(d)
    q = q.reshape(b, self.num_quantiles, self.horizon)
    return q * scale[:, :, None] + loc[:, :, None], enc


def params_from_chronos_bolt(config: dict, state, path: str = "") -> tuple[ChronosBolt, dict]:
  """``(model, variables)`` from a Chronos-Bolt ``config.json`` dict and its state dict (shapes checked)."""
  get = tensor_getter(state, path, "Chronos-Bolt")
  cc = config["chronos_config"]
  if cc.get("input_patch_stride", cc["input_patch_size"]) != cc["input_patch_size"]:
    raise ValueError(f"{path}: overlapping patches (stride != size) are not supported")
  d, dkv, heads, dff = config["d_model"], config["d_kv"], config["num_heads"], config["d_ff"]
  gated = config.get("feed_forward_proj", "relu").startswith("gated")
  model = ChronosBolt(d, dkv, heads, dff, config["num_layers"], config.get("num_decoder_layers", config["num_layers"]),
                      cc["input_patch_size"], cc["prediction_length"], len(cc["quantiles"]), gated,
                      config.get("dense_act_fn", "relu"), cc.get("use_reg_token", False),
                      config.get("relative_attention_num_buckets", 32),
                      config.get("relative_attention_max_distance", 128), config.get("layer_norm_epsilon", 1e-6))
  inner = heads * dkv

  def dense(key, din, dout, bias=True):
    out = {"kernel": get(key + ".weight", (dout, din)).T}
    if bias:
      out["bias"] = get(key + ".bias", (dout,))
    return out

  def block(prefix, din, dout):
    return {"hidden_layer": dense(prefix + ".hidden_layer", din, dff),
            "output_layer": dense(prefix + ".output_layer", dff, dout),
            "residual_layer": dense(prefix + ".residual_layer", din, dout)}

  def attn(prefix):
    return {"q": dense(prefix + ".q", d, inner, False), "k": dense(prefix + ".k", d, inner, False),
            "v": dense(prefix + ".v", d, inner, False), "o": dense(prefix + ".o", inner, d, False)}

  def ff(prefix):
    names = ("wi_0", "wi_1") if gated else ("wi",)
    return {**{n: dense(f"{prefix}.{n}", d, dff, False) for n in names}, "wo": dense(prefix + ".wo", dff, d, False)}

  def norm(key):
    return {"weight": get(key + ".weight", (d,))}

  nb = model.num_buckets
  params = {"shared": get("shared.weight", (2 if model.use_reg_token else 1, d)),
            "input_patch_embedding": block("input_patch_embedding", 2 * model.patch, d),
            "output_patch_embedding": block("output_patch_embedding", d, model.num_quantiles * model.horizon),
            "encoder_relative_attention_bias": get("encoder.block.0.layer.0.SelfAttention.relative_attention_bias"
                                                   ".weight", (nb, heads)),
            "decoder_relative_attention_bias": get("decoder.block.0.layer.0.SelfAttention.relative_attention_bias"
                                                   ".weight", (nb, heads)),
            "encoder_final_norm": norm("encoder.final_layer_norm"), "decoder_final_norm": norm("decoder.final_layer_norm")}
  for i in range(model.layers):
    p = f"encoder.block.{i}.layer"
    params[f"encoder_{i}_attn_norm"] = norm(f"{p}.0.layer_norm")
    params[f"encoder_{i}_attn"] = attn(f"{p}.0.SelfAttention")
    params[f"encoder_{i}_ff_norm"] = norm(f"{p}.1.layer_norm")
    params[f"encoder_{i}_ff"] = ff(f"{p}.1.DenseReluDense")
  for i in range(model.decoder_layers):
    p = f"decoder.block.{i}.layer"
    params[f"decoder_{i}_self_norm"] = norm(f"{p}.0.layer_norm")
    params[f"decoder_{i}_self"] = attn(f"{p}.0.SelfAttention")
    params[f"decoder_{i}_cross_norm"] = norm(f"{p}.1.layer_norm")
    params[f"decoder_{i}_cross"] = attn(f"{p}.1.EncDecAttention")
    params[f"decoder_{i}_ff_norm"] = norm(f"{p}.2.layer_norm")
    params[f"decoder_{i}_ff"] = ff(f"{p}.2.DenseReluDense")
  return model, {"params": params}


def load_chronos_bolt(directory: str) -> tuple[ChronosBolt, dict]:
  """``(model, variables)`` from a local Chronos-Bolt directory (``config.json`` + ``model.safetensors``)."""
  cfg_path, weights = os.path.join(directory, "config.json"), os.path.join(directory, "model.safetensors")
  for p in (cfg_path, weights):
    if not os.path.exists(p):
      raise FileNotFoundError(f"{p}: file not found (a Chronos-Bolt directory holds config.json and "
                              "model.safetensors)")
  with open(cfg_path) as f:
    config = json.load(f)
  if "chronos_config" not in config:
    raise ValueError(f"{cfg_path}: no 'chronos_config'; not a Chronos-Bolt config")
  from safetensors.numpy import load_file
  return params_from_chronos_bolt(config, load_file(weights), weights)
