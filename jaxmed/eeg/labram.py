"""LaBraM (Jiang et al., 2024) in Flax, as braindecode's ``Labram`` defines it (neural-tokenizer mode), with a loader.

``x [B, C, T]`` (LaBraM's unit: 0.1 mV, i.e. microvolts / 100), ``T`` a multiple of ``patch`` (200 samples,
1 s at 200 Hz):

1. each channel is cut into ``P = T / patch`` patches; every patch of every channel becomes one token;
2. temporal convolution per patch (braindecode's ``_TemporalConv``): Conv (1, 15) stride 8 padding 7 to 8
   feature maps, GroupNorm(4), GELU, then twice Conv (1, 3) padding 1, GroupNorm(4), GELU; the ``(time, map)``
   grid is flattened time-major into the token (``D = 8 ceil(patch / 8)`` = 200);
3. a class token; a learned *channel* embedding (``position_embedding``, row 0 the class token's, rows
   ``1 + canonical index`` for the channels, the same for every patch of a channel) and a learned *temporal*
   embedding (``temporal_embedding`` rows ``0 .. P-1``, the same for every channel);
4. ``layers`` pre-norm blocks (LayerNorm eps 1e-6): attention without qkv bias, with LayerNorm on q and k per
   head (eps 1e-6), scaled by ``head_dim^-1/2``; MLP ratio 4 with GELU; layer scales ``gamma_1`` / ``gamma_2``;
5. final LayerNorm, the class token, a linear head.

``channel_index [C]``: each input channel's 0-based index in braindecode's ``LABRAM_CHANNEL_ORDER`` (128
names); map your montage's names to it. :func:`params_from_braindecode_labram` maps a braindecode state dict
(``patch_embed.temporal_conv.*``, ``blocks.{i}.*``, ``position_embedding``, ``temporal_embedding``,
``cls_token``, ``norm``, ``final_layer``) onto these params; :func:`load_braindecode_labram` reads safetensors.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxmed.io.torch_checkpoint import tensor_getter


class TemporalConv(nn.Module):
  """``[B, N, patch] -> [B, N, maps * T1]`` (``T1 = floor((patch - 1) / 8) + 1``).

  The GroupNorm statistics of a sample span all its tokens (braindecode stacks the tokens as rows of one image).
  """
  maps: int = 8

  @nn.compact
  def __call__(self, x):
    b, n, p = x.shape
    h = x.reshape(b * n, p, 1)
    for i, (k, stride, pad) in enumerate(((15, 8, 7), (3, 1, 1), (3, 1, 1))):
      h = nn.Conv(self.maps, (k,), (stride,), padding=[(pad, pad)], name=f"conv{i + 1}")(h)
      g = nn.GroupNorm(num_groups=4, epsilon=1e-5, name=f"norm{i + 1}")(h.reshape(b, n, -1, self.maps))
      h = nn.gelu(g, approximate=False).reshape(b * n, -1, self.maps)
    return h.reshape(b, n, -1)                                  # [T1, maps] flattened time-major


class LaBraMAttention(nn.Module):
  heads: int

  @nn.compact
  def __call__(self, x):
    b, n, d = x.shape
    hd = d // self.heads
    q, k, v = jnp.split(nn.Dense(3 * d, use_bias=False, name="qkv")(x).reshape(b, n, 3 * self.heads, hd), 3, 2)
    q = nn.LayerNorm(1e-6, name="q_norm")(q) * hd ** -0.5
    k = nn.LayerNorm(1e-6, name="k_norm")(k)
    att = jax.nn.softmax(jnp.einsum("bqhd,bkhd->bhqk", q, k), -1)
    return nn.Dense(d, name="proj")(jnp.einsum("bhqk,bkhd->bqhd", att, v).reshape(b, n, d))


class LaBraMBlock(nn.Module):
  heads: int
  mlp_ratio: float = 4.0

  @nn.compact
  def __call__(self, x):
    d = x.shape[-1]
    g1 = self.param("gamma_1", nn.initializers.constant(0.1), (d,))
    g2 = self.param("gamma_2", nn.initializers.constant(0.1), (d,))
    x = x + g1 * LaBraMAttention(self.heads, name="attn")(nn.LayerNorm(1e-6, name="norm1")(x))
    h = nn.gelu(nn.Dense(int(d * self.mlp_ratio), name="fc1")(nn.LayerNorm(1e-6, name="norm2")(x)), approximate=False)
    return x + g2 * nn.Dense(d, name="fc2")(h)


class LaBraM(nn.Module):
  """``(x [B, C, T], channel_index [C]) -> logits [B, num_outputs]``; ``features=True``: class token ``[B, D]``."""
  num_outputs: int
  patch: int = 200
  max_patches: int = 16
  layers: int = 12
  heads: int = 10
  num_positions: int = 129
  maps: int = 8

  @nn.compact
  def __call__(self, x, channel_index, features: bool = False):
    b, c, t = x.shape
    if t % self.patch:
      raise ValueError(f"LaBraM: {t} samples are not a multiple of the {self.patch}-sample patch")
    p = t // self.patch
    if p > self.max_patches:
      raise ValueError(f"LaBraM: {p} patches exceed the {self.max_patches} temporal embeddings")
    h = TemporalConv(self.maps, name="temporal_conv")(x.reshape(b, c * p, self.patch))
    d = h.shape[-1]
    cls = self.param("cls_token", nn.initializers.truncated_normal(0.02), (1, 1, d))
    pos = self.param("position_embedding", nn.initializers.truncated_normal(0.02), (1, self.num_positions, d))
    tem = self.param("temporal_embedding", nn.initializers.truncated_normal(0.02), (1, self.max_patches + 1, d))
    idx = jnp.asarray(channel_index) + 1
    h = h + jnp.repeat(pos[0, idx], p, axis=0)[None] + jnp.tile(tem[0, :p], (c, 1))[None]
    h = jnp.concatenate([jnp.broadcast_to(cls + pos[:, :1], (b, 1, d)), h], 1)
    for i in range(self.layers):
      h = LaBraMBlock(self.heads, name=f"blocks_{i}")(h)
    h = nn.LayerNorm(1e-6, name="norm")(h)[:, 0]
    return h if features else nn.Dense(self.num_outputs, name="final_layer")(h)


def params_from_braindecode_labram(state, heads: int, patch: int = 200, path: str = "") -> tuple[LaBraM, dict]:
  """``(model, variables)`` from a braindecode ``Labram`` state dict (neural-tokenizer mode, no qkv bias).

  ``patch`` (samples per token) is not recoverable from the tensors; LaBraM's is 200 (1 s at 200 Hz)."""
  get = tensor_getter(state, path, "braindecode LaBraM")
  pos, tem = get("position_embedding"), get("temporal_embedding")
  d = pos.shape[-1]
  layers = len({k.split(".")[1] for k in state if k.startswith("blocks.")})
  w1 = get("patch_embed.temporal_conv.conv1.weight")                       # [maps, 1, 1, 15]
  maps = w1.shape[0]
  out = get("final_layer.weight")

  def conv(i):
    w = get(f"patch_embed.temporal_conv.conv{i}.weight")
    return {"kernel": w[:, :, 0, :].transpose(2, 1, 0), "bias": get(f"patch_embed.temporal_conv.conv{i}.bias",
                                                                    (maps,))}

  def norm(key, n=d):
    return {"scale": get(key + ".weight", (n,)), "bias": get(key + ".bias", (n,))}

  def dense(key, din, dout, bias=True):
    r = {"kernel": get(key + ".weight", (dout, din)).T}
    if bias:
      r["bias"] = get(key + ".bias", (dout,))
    return r

  tc = {f"conv{i}": conv(i) for i in (1, 2, 3)}
  tc.update({f"norm{i}": norm(f"patch_embed.temporal_conv.norm{i}", maps) for i in (1, 2, 3)})
  hidden = get("blocks.0.mlp.0.weight").shape[0]
  params = {"temporal_conv": tc, "cls_token": get("cls_token", (1, 1, d)), "position_embedding": pos,
            "temporal_embedding": tem, "norm": norm("norm"), "final_layer": dense("final_layer", d, out.shape[0])}
  for i in range(layers):
    p = f"blocks.{i}"
    if f"{p}.attn.q_bias" in state:
      raise ValueError(f"{path}: {p}.attn has q_bias / v_bias (qkv_bias=True), which this port does not map")
    hd = get(f"{p}.attn.q_norm.weight").shape[0]
    params[f"blocks_{i}"] = {
        "gamma_1": get(f"{p}.gamma_1", (d,)), "gamma_2": get(f"{p}.gamma_2", (d,)),
        "norm1": norm(f"{p}.norm1"), "norm2": norm(f"{p}.norm2"),
        "attn": {"qkv": dense(f"{p}.attn.qkv", d, 3 * d, False), "proj": dense(f"{p}.attn.proj", d, d),
                 "q_norm": norm(f"{p}.attn.q_norm", hd), "k_norm": norm(f"{p}.attn.k_norm", hd)},
        "fc1": dense(f"{p}.mlp.0", d, hidden), "fc2": dense(f"{p}.mlp.2", hidden, d)}
  if ((patch - 1) // 8 + 1) * maps != d:
    raise ValueError(f"{path}: a {patch}-sample patch gives {((patch - 1) // 8 + 1) * maps} features, the tensors {d}")
  model = LaBraM(out.shape[0], patch=patch, max_patches=tem.shape[1] - 1, layers=layers,
                 heads=heads, num_positions=pos.shape[1], maps=maps)
  return model, {"params": params}


def load_braindecode_labram(path: str, heads: int = 10, patch: int = 200) -> tuple[LaBraM, dict]:
  """``(model, variables)`` from a braindecode LaBraM state dict saved as safetensors (LaBraM-base: 10 heads)."""
  from safetensors.numpy import load_file
  try:
    state = load_file(path)
  except Exception as e:  # missing file, not safetensors
    raise ValueError(f"{path}: could not read a safetensors state dict ({type(e).__name__}: {e})") from e
  return params_from_braindecode_labram(state, heads, patch, path)
