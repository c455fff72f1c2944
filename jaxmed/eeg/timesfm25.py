"""TimesFM 2.5 (google/timesfm-2.5-200m-pytorch) in Flax: the released network, loaded from its safetensors.

The network (``timesfm`` package, ``TimesFM_2p5_200M_torch_module.forward``) maps input patches
``[B, N, 32]`` and their padding masks to per-patch forecasts:

1. tokenizer: a residual block on ``[patch, mask]`` (64 -> D, swish, biases): ``out(swish(hidden(z))) + res(z)``;
2. ``layers`` decoder blocks, each
   ``a = post_attn_ln(attn(pre_attn_ln(x))) + x`` and
   ``y = post_ff_ln(ff1(swish(ff0(pre_ff_ln(a))))) + a`` with RMSNorms (``x / rms(x) * scale``, eps 1e-6,
   no ``1 +``) and no biases; the attention fuses ``qkv_proj``, rotates q and k by rotary embeddings of the patch
   position (counted from the first unpadded patch), RMS-normalises q and k per head, scales q per dimension by
   ``1.442695 / sqrt(head_dim) * softplus(per_dim_scale)``, and is causal with the leading padded patches masked
   out of the keys;
3. two residual heads without biases: ``output_projection_point`` (D -> 128 x 10: mean and 9 quantiles of the
   next 128 samples) and ``output_projection_quantiles`` (D -> 1024 x 10, the long quantile head).

:func:`load_timesfm25` reads the released ``model.safetensors`` (no pickle), takes the sizes from the tensors and
checks every tensor's shape. Not ported: the ``decode`` loop around the network (RevIN normalisation of the
context, autoregressive continuation, flip-invariance and quantile fixing); the forward above is what the parity
test checks against the ``timesfm`` package.
"""

from __future__ import annotations

from typing import Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxmed.io.torch_checkpoint import tensor_getter


class RMSNorm(nn.Module):
  epsilon: float = 1e-6

  @nn.compact
  def __call__(self, x):
    scale = self.param("scale", nn.initializers.zeros, (x.shape[-1],))
    return x * jax.lax.rsqrt(jnp.mean(x * x, -1, keepdims=True) + self.epsilon) * scale


class ResidualBlock(nn.Module):
  hidden: int
  out: int
  use_bias: bool

  @nn.compact
  def __call__(self, x):
    h = nn.swish(nn.Dense(self.hidden, use_bias=self.use_bias, name="hidden_layer")(x))
    return (nn.Dense(self.out, use_bias=self.use_bias, name="output_layer")(h)
            + nn.Dense(self.out, use_bias=self.use_bias, name="residual_layer")(x))


def rotary(x: jax.Array, position: jax.Array, max_timescale: float = 10000.0) -> jax.Array:
  """``x [B, N, H, d]`` rotated by ``position [B, N]`` (halves, not interleaved; timescales 1 .. 10^4)."""
  d = x.shape[-1]
  timescale = max_timescale ** (2 * jnp.arange(d // 2) / d)
  angle = position[..., None, None] / timescale
  first, second = x[..., :d // 2], x[..., d // 2:]
  return jnp.concatenate([first * jnp.cos(angle) - second * jnp.sin(angle),
                          second * jnp.cos(angle) + first * jnp.sin(angle)], -1)


class Attention(nn.Module):
  heads: int

  @nn.compact
  def __call__(self, x, num_masked):
    b, n, d = x.shape
    hd = d // self.heads
    q, k, v = (t.reshape(b, n, self.heads, hd) for t in jnp.split(
        nn.Dense(3 * d, use_bias=False, name="qkv_proj")(x), 3, -1))
    position = jnp.arange(n)[None] - num_masked[:, None]
    q, k = rotary(q, position), rotary(k, position)
    q, k = RMSNorm(name="query_ln")(q), RMSNorm(name="key_ln")(k)
    per_dim = self.param("per_dim_scale", nn.initializers.zeros, (hd,))
    q = q * (1.442695041 / np.sqrt(hd) * jax.nn.softplus(per_dim))
    logits = jnp.einsum("bqhd,bkhd->bhqk", q, k)
    idx = jnp.arange(n)
    mask = (idx[:, None] >= idx[None])[None, None] & (idx[None, None, None] >= num_masked[:, None, None, None])
    logits = jnp.where(mask, logits, -jnp.finfo(logits.dtype).max / 2)
    out = jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(logits, -1), v).reshape(b, n, d)
    return nn.Dense(d, use_bias=False, name="out")(out)


class Layer(nn.Module):
  heads: int
  hidden: int

  @nn.compact
  def __call__(self, x, num_masked):
    a = RMSNorm(name="post_attn_ln")(Attention(self.heads, name="attn")(RMSNorm(name="pre_attn_ln")(x),
                                                                         num_masked)) + x
    h = nn.Dense(self.hidden, use_bias=False, name="ff0")(RMSNorm(name="pre_ff_ln")(a))
    return RMSNorm(name="post_ff_ln")(nn.Dense(a.shape[-1], use_bias=False, name="ff1")(nn.swish(h))) + a


class TimesFM25(nn.Module):
  """``(patches [B, N, p], masks [B, N, p] bool; True = padding) -> (point [B, N, o, Q], quantiles [B, N, os, Q])``.

  Also returns the final embeddings ``[B, N, D]`` (features for probes). Padding must lead (left padding);
  outputs at padded patches are undefined (they have no key to attend to).
  """
  patch: int = 32
  dim: int = 1280
  layers: int = 20
  heads: int = 16
  hidden: int = 1280
  output_patch: int = 128
  output_quantile_len: int = 1024
  num_outputs: int = 10

  @nn.compact
  def __call__(self, patches: jax.Array, masks: jax.Array):
    z = jnp.concatenate([patches, masks.astype(patches.dtype)], -1)
    h = ResidualBlock(self.dim, self.dim, True, name="tokenizer")(z)
    num_masked = masks[..., -1].astype(jnp.int32).sum(-1)
    for i in range(self.layers):
      h = Layer(self.heads, self.hidden, name=f"stacked_xf_{i}")(h, num_masked)
    b, n, _ = h.shape
    point = ResidualBlock(self.dim, self.output_patch * self.num_outputs, False, name="output_projection_point")(h)
    quant = ResidualBlock(self.dim, self.output_quantile_len * self.num_outputs, False,
                          name="output_projection_quantiles")(h)
    return (point.reshape(b, n, self.output_patch, self.num_outputs),
            quant.reshape(b, n, self.output_quantile_len, self.num_outputs), h)


def params_from_timesfm25(state: Mapping[str, np.ndarray], path: str = "") -> tuple[TimesFM25, dict]:
  """``(model, variables)`` from a TimesFM 2.5 state dict (sizes from the tensors; each key and shape checked)."""
  get = tensor_getter(state, path, "TimesFM 2.5")

  d, twice_p = get("tokenizer.hidden_layer.weight").shape
  layers = len({k.split(".")[1] for k in state if k.startswith("stacked_xf.")})
  hd = get("stacked_xf.0.attn.query_ln.scale").shape[0]
  hidden = get("stacked_xf.0.ff0.weight").shape[0]
  point_out = get("output_projection_point.output_layer.weight").shape[0]
  quant_out = get("output_projection_quantiles.output_layer.weight").shape[0]
  model = TimesFM25(patch=twice_p // 2, dim=d, layers=layers, heads=d // hd, hidden=hidden,
                    output_patch=point_out // 10, output_quantile_len=quant_out // 10, num_outputs=10)

  def dense(prefix, din, dout, bias):
    out = {"kernel": get(prefix + ".weight", (dout, din)).T}
    if bias:
      out["bias"] = get(prefix + ".bias", (dout,))
    return out

  def block(prefix, din, dh, dout, bias):
    return {"hidden_layer": dense(prefix + ".hidden_layer", din, dh, bias),
            "output_layer": dense(prefix + ".output_layer", dh, dout, bias),
            "residual_layer": dense(prefix + ".residual_layer", din, dout, bias)}

  params = {"tokenizer": block("tokenizer", twice_p, d, d, True),
            "output_projection_point": block("output_projection_point", d, d, point_out, False),
            "output_projection_quantiles": block("output_projection_quantiles", d, d, quant_out, False)}
  for i in range(layers):
    p = f"stacked_xf.{i}"
    params[f"stacked_xf_{i}"] = {
        **{n: {"scale": get(f"{p}.{n}.scale", (d,))} for n in ("pre_attn_ln", "post_attn_ln", "pre_ff_ln",
                                                                 "post_ff_ln")},
        "attn": {"qkv_proj": dense(f"{p}.attn.qkv_proj", d, 3 * d, False), "out": dense(f"{p}.attn.out", d, d, False),
                 "query_ln": {"scale": get(f"{p}.attn.query_ln.scale", (hd,))},
                 "key_ln": {"scale": get(f"{p}.attn.key_ln.scale", (hd,))},
                 "per_dim_scale": get(f"{p}.attn.per_dim_scale.per_dim_scale", (hd,))},
        "ff0": dense(f"{p}.ff0", d, hidden, False), "ff1": dense(f"{p}.ff1", hidden, d, False)}
  return model, {"params": params}


def load_timesfm25(path: str) -> tuple[TimesFM25, dict]:
  """``(model, variables)`` from the released ``model.safetensors`` of TimesFM 2.5 (a local file; no download)."""
  from safetensors.numpy import load_file
  try:
    state = load_file(path)
  except Exception as e:  # missing file, not safetensors
    raise ValueError(f"{path}: could not read a safetensors state dict ({type(e).__name__}: {e})") from e
  return params_from_timesfm25(state, path)
