"""TimesFM-style decoder-only forecaster (Das et al., 2024): patched input, RevIN, next-patch pretraining.

``x [B, L]`` (L a multiple of ``input_patch``) is normalised with the mean
and standard deviation of its first patch (TimesFM's reversible instance
normalisation; a std below ``1e-6`` counts as 1), cut into patches, each
patch concatenated with its padding indicator and embedded by a residual
MLP block (``input_ff_layer``: ``out(silu(hidden(z))) + residual(z)``).
Sin-cos positions and a frequency-class embedding are added, and a stack of
causal decoder layers follows:

``h = h + o_proj(attn(RMSNorm(h)))`` with queries scaled per dimension by
``softplus(scaling) * 1.442695 / sqrt(head_dim)``, then
``h = h + down_proj(relu(gate_proj(LayerNorm(h))))``.

``horizon_ff_layer`` maps every position to the next ``output_patch``
values and ``num_quantiles`` quantiles, de-normalised with the same
statistics. Pretraining (:func:`next_patch_loss`): position ``i`` predicts
samples ``[(i + 1) p, (i + 1) p + output_patch)``; MSE on the mean head and
the pinball loss on the quantile heads, in the normalised scale.

Checkpoint layout: parameter names follow TimesFM's published PyTorch
state dict (which mirrors its PAX/Flax tree), so
:func:`params_from_timesfm_state_dict` maps a TimesFM 1.0 state dict
(``input_ff_layer.hidden_layer.0.weight``, ``stacked_transformer.layers.{i}
.self_attn.qkv_proj.weight``, ...) to these params, transposing linear
weights and checking every key and shape. Supported: that state dict as
arrays (e.g. a safetensors file, :func:`load_timesfm_safetensors`), with
``use_positional_embedding=True`` (1.0) or ``False`` (2.0 layout, 50
layers). Not supported: reading the PAX/orbax checkpoint tree directly, left
padding (RevIN statistics here always come from the first patch; TimesFM
takes them from the first unpadded one),
pickled ``.ckpt`` files (no pickle loading), TimesFM 2.5 (a different network: see
:mod:`jaxmed.eeg.timesfm25`), and the
autoregressive multi-step decoding beyond one output patch. The mapping is
tested on a state dict built with the published names and shapes, not on
the downloaded weights (no download here).
"""

from __future__ import annotations

from typing import Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxmed.core.checkpoint import reading_checkpoint
from jaxmed.eeg.normalise import patchify
from jaxmed.eeg.timesfm25 import ResidualBlock  # out(swish(hidden(z))) + residual(z), as in TimesFM 1.0-2.5

QUANTILES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


class RMSNorm(nn.Module):
  """``x / rms(x) * weight`` (TimesFM's RMSNorm without unit offset; ``weight`` starts at 1 here)."""
  eps: float = 1e-6

  @nn.compact
  def __call__(self, x):
    w = self.param("weight", nn.initializers.ones, (x.shape[-1],))
    x32 = x.astype(jnp.float32)
    return (x32 * jax.lax.rsqrt((x32 ** 2).mean(-1, keepdims=True) + self.eps) * w).astype(x.dtype)


class CausalSelfAttention(nn.Module):
  heads: int

  @nn.compact
  def __call__(self, x, pad):
    b, n, d = x.shape
    hd = d // self.heads
    q, k, v = jnp.split(nn.Dense(3 * d, name="qkv_proj")(x), 3, axis=-1)
    q, k, v = (a.reshape(b, n, self.heads, hd) for a in (q, k, v))
    scaling = self.param("scaling", nn.initializers.zeros, (hd,))
    q = q * (1.442695041 / np.sqrt(hd)) * jax.nn.softplus(scaling)
    logits = jnp.einsum("bqhd,bkhd->bhqk", q, k).astype(jnp.float32)
    allowed = jnp.tril(jnp.ones((n, n), bool))[None, None] & (pad[:, None, None, :] < 0.5)
    probs = jax.nn.softmax(jnp.where(allowed, logits, -1e30), axis=-1).astype(x.dtype)
    out = jnp.einsum("bhqk,bkhd->bqhd", probs, v).reshape(b, n, d)
    return nn.Dense(d, name="o_proj")(out)


class DecoderLayer(nn.Module):
  heads: int
  hidden: int

  @nn.compact
  def __call__(self, x, pad):
    x = x + CausalSelfAttention(self.heads, name="self_attn")(RMSNorm(name="input_layernorm")(x), pad)
    h = nn.LayerNorm(epsilon=1e-6, name="mlp_layer_norm")(x.astype(jnp.float32)).astype(x.dtype)
    h = nn.Dense(x.shape[-1], name="mlp_down_proj")(nn.relu(nn.Dense(self.hidden, name="mlp_gate_proj")(h)))
    return x + h * (1.0 - pad[..., None])


def timesfm_positions(num: int, dim: int) -> np.ndarray:
  """``[num, dim]``: ``[sin(p / s_i), cos(p / s_i)]``, timescales ``s_i`` log-spaced from 1 to 1e4."""
  half = dim // 2
  inv = np.exp(-np.arange(half) * np.log(1e4) / max(half - 1, 1))
  arg = np.arange(num)[:, None] * inv[None]
  return np.concatenate([np.sin(arg), np.cos(arg)], -1).astype(np.float32)


def revin_stats(x: jax.Array, patch: int) -> tuple[jax.Array, jax.Array]:
  """``[B, L]`` -> first-patch mean and std ``[B, 1]`` (a std below 1e-6 counts as 1)."""
  first = x[:, :patch].astype(jnp.float32)
  mu, sigma = first.mean(-1, keepdims=True), first.std(-1, keepdims=True)
  return mu, jnp.where(sigma < 1e-6, 1.0, sigma)


class TimesFMDecoder(nn.Module):
  """``x [B, L]`` -> ``(forecast [B, P, output_patch, 1 + Q] in x's units, hidden [B, P, D])``."""
  input_patch: int = 32
  output_patch: int = 128
  dim: int = 1280
  depth: int = 20
  heads: int = 16
  hidden: int | None = None
  num_quantiles: int = len(QUANTILES)
  use_positional_embedding: bool = True
  num_freq: int = 3

  @nn.compact
  def __call__(self, x: jax.Array, padding: jax.Array | None = None, freq: int | jax.Array = 0):
    mu, sigma = revin_stats(x, self.input_patch)
    if padding is None:                                  # no padding: skip the (constant) mask reductions
      z = patchify((x - mu) / sigma, self.input_patch)                                 # [B, P, p]
      pad, pad_patch = jnp.zeros_like(z), jnp.zeros(z.shape[:2], z.dtype)
    else:
      z = patchify((x - mu) / sigma * (1.0 - padding), self.input_patch)
      pad = patchify(padding, self.input_patch)
      pad_patch = pad.min(-1)                            # a patch is padding only when all its samples are
    h = ResidualBlock(self.hidden or self.dim, self.dim, True, name="input_ff_layer")(jnp.concatenate([z, pad], -1))
    if self.use_positional_embedding:
      h = h + jnp.asarray(timesfm_positions(h.shape[1], self.dim))[None]
    h = h + nn.Embed(self.num_freq, self.dim, name="freq_emb")(jnp.broadcast_to(jnp.asarray(freq), (x.shape[0], 1)))
    for i in range(self.depth):
      h = DecoderLayer(self.heads, self.hidden or self.dim, name=f"layers_{i}")(h, pad_patch)
    out = ResidualBlock(self.hidden or self.dim, self.output_patch * (1 + self.num_quantiles), True,
                        name="horizon_ff_layer")(h)
    out = out.reshape(*h.shape[:2], self.output_patch, 1 + self.num_quantiles)
    return out * sigma[:, :, None, None] + mu[:, :, None, None], h


def next_patch_loss(model: TimesFMDecoder, params, x: jax.Array) -> jax.Array:
  """Mean-head MSE + quantile pinball loss of every position's next-``output_patch`` forecast (normalised scale)."""
  p, o = model.input_patch, model.output_patch
  n = x.shape[1] // p
  valid = [i for i in range(n) if (i + 1) * p + o <= x.shape[1]]
  if not valid:
    raise ValueError(f"next_patch_loss: a length-{x.shape[1]} series has no position with a full "
                     f"{o}-sample target after a {p}-sample patch")
  forecast, _ = model.apply(params, x)
  mu, sigma = revin_stats(x, p)
  pred = (forecast[:, np.array(valid)] - mu[:, :, None, None]) / sigma[:, :, None, None]
  idx = (np.array(valid)[:, None] + 1) * p + np.arange(o)[None]
  target = ((x - mu) / sigma)[:, idx]                                                 # [B, V, o]
  loss = ((pred[..., 0] - target) ** 2).mean()
  if model.num_quantiles:
    q = jnp.asarray(QUANTILES[:model.num_quantiles] if model.num_quantiles <= len(QUANTILES)
                    else np.linspace(0.05, 0.95, model.num_quantiles))
    err = target[..., None] - pred[..., 1:]
    loss = loss + jnp.maximum(q * err, (q - 1) * err).mean()
  return loss


# ---- the published state-dict layout ----

def params_from_timesfm_state_dict(sd: Mapping[str, np.ndarray], depth: int, *, source: str = "state dict") -> dict:
  """TimesFM's PyTorch state-dict names -> ``{"params": ...}`` for :class:`TimesFMDecoder` (all keys used)."""
  sd = {k: np.asarray(v, np.float32) for k, v in sd.items()}
  used: set[str] = set()

  def take(key):
    if key not in sd:
      raise KeyError(f"{source}: key '{key}' is missing; expected TimesFM's published state-dict layout")
    used.add(key)
    return sd[key]

  def linear(key):
    return {"kernel": take(f"{key}.weight").T, "bias": take(f"{key}.bias")}

  def block(key):
    return {n: linear(f"{key}.{src}") for n, src in (("hidden_layer", "hidden_layer.0"),
                                                     ("output_layer", "output_layer"),
                                                     ("residual_layer", "residual_layer"))}

  params = {"input_ff_layer": block("input_ff_layer"), "horizon_ff_layer": block("horizon_ff_layer"),
            "freq_emb": {"embedding": take("freq_emb.weight")}}
  for i in range(depth):
    pre = f"stacked_transformer.layers.{i}"
    params[f"layers_{i}"] = {
        "input_layernorm": {"weight": take(f"{pre}.input_layernorm.weight")},
        "self_attn": {"qkv_proj": linear(f"{pre}.self_attn.qkv_proj"), "o_proj": linear(f"{pre}.self_attn.o_proj"),
                      "scaling": take(f"{pre}.self_attn.scaling")},
        "mlp_layer_norm": {"scale": take(f"{pre}.mlp.layer_norm.weight"), "bias": take(f"{pre}.mlp.layer_norm.bias")},
        "mlp_gate_proj": linear(f"{pre}.mlp.gate_proj"), "mlp_down_proj": linear(f"{pre}.mlp.down_proj")}
  extra = sorted(set(sd) - used)
  if extra:
    raise KeyError(f"{source}: unexpected keys {extra[:5]}{'...' if len(extra) > 5 else ''}; the model has "
                   f"depth {depth} (TimesFM 1.0-200m: 20 layers, 2.0-500m: 50)")
  return {"params": params}


def check_params_match(params, reference, source: str = "checkpoint") -> None:
  """Raises naming the first leaf whose shape differs between loaded ``params`` and the model's ``reference``."""
  flat_p = {jax.tree_util.keystr(k): v for k, v in jax.tree_util.tree_leaves_with_path(params)}
  flat_r = {jax.tree_util.keystr(k): v for k, v in jax.tree_util.tree_leaves_with_path(reference)}
  for key, ref in flat_r.items():
    if key not in flat_p:
      raise KeyError(f"{source}: parameter {key} missing")
    if tuple(flat_p[key].shape) != tuple(ref.shape):
      raise ValueError(f"{source}: parameter {key} has shape {tuple(flat_p[key].shape)}; the model expects "
                       f"{tuple(ref.shape)}")


def load_timesfm_safetensors(path: str, model: TimesFMDecoder) -> dict:
  """A safetensors file holding TimesFM's state dict -> params checked against ``model``'s shapes."""
  from safetensors.numpy import load_file
  with reading_checkpoint(path, "a safetensors file of TimesFM weights"):
    state_dict = load_file(path)
  params = params_from_timesfm_state_dict(state_dict, model.depth, source=path)
  ref = jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros((1, model.input_patch * 2)))
  check_params_match(params, ref, source=path)
  return params
