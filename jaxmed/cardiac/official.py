"""Official ViTa checkpoints (Yundi-Zhang/ViTa, PyTorch Lightning) <-> :class:`~jaxmed.cardiac.CineEncoder` params.

The official image encoder is ``networks/imaging_encoders.py``
``ImagingMaskedEncoder``: a ``Conv3d(1, D, patch, stride=patch)`` patch
embedding, a fixed sin-cos ``enc_pos_embed`` with a zero CLS row, a CLS
token, timm ``Block`` s (``qkv_bias=True``, LayerNorm eps 1e-5) and
``encoder_norm``. A Lightning checkpoint stores them under ``state_dict``
with the module's attribute as prefix (``encoder_imaging.`` in every
model). Tensor names and our params:

=====================================  ==========================================================
official                               ours (``params/...``)
=====================================  ==========================================================
``patch_embed.proj.weight [D,1,t,h,w]`` ``patch_embed/kernel [t*h*w, D]`` (the conv is a Dense on the patch)
``cls_token [1,1,D]``                   ``cls_token``
``encoder.i.norm1.{weight,bias}``       ``blocks/TransformerBlock_i/LayerNorm_0/{scale,bias}``
``encoder.i.attn.qkv.weight [3D,D]``    ``.../MultiHeadDotProductAttention_0/{query,key,value}/kernel [D,H,D/H]``
``encoder.i.attn.proj.weight [D,D]``    ``.../MultiHeadDotProductAttention_0/out/kernel [H,D/H,D]``
``encoder.i.norm2``                     ``.../LayerNorm_1``
``encoder.i.mlp.fc1`` / ``fc2``         ``.../MLP_0/Dense_1`` / ``Dense_0`` (flax names by construction order)
``encoder_norm``                        ``blocks/LayerNorm_0``
``enc_pos_embed [1,1+L,D]``             not a parameter: checked against :func:`position_embedding_5d`
=====================================  ==========================================================
"""

from __future__ import annotations

import numpy as np

from jaxmed.cardiac.tokens import position_embedding_5d
from jaxmed.io import load_torch_checkpoint

PREFIX = "encoder_imaging."


def read_state_dict(path: str) -> dict[str, np.ndarray]:
  """A Lightning ``.ckpt`` (``{"state_dict": ...}``) or a bare state dict file, as float32 NumPy arrays (read by
  :func:`jaxmed.io.load_torch_checkpoint`, without torch)."""
  obj = load_torch_checkpoint(path)
  state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
  if not isinstance(state, dict):
    raise ValueError(f"{path}: expected a state dict or a Lightning checkpoint with 'state_dict', got "
                     f"{type(obj).__name__}")
  return {k: np.asarray(v, np.float32) for k, v in state.items() if isinstance(v, np.ndarray)}


def encoder_from_official(state: dict[str, np.ndarray], *, num_lax: int, grid: tuple[int, int, int, int],
                          num_heads: int, prefix: str = PREFIX, source: str = "checkpoint") -> dict:
  """Our encoder params ``{"params": ...}`` from an official state dict.

  ``grid = (S, T/t, H/h, W/w)``. Raises ``ValueError`` naming the missing
  tensor, a shape that does not fit, or a position embedding that is not
  the official one for this grid (another layout or view polarity).
  """
  def get(name):
    key = prefix + name
    if key not in state:
      raise ValueError(f"{source}: tensor '{key}' is missing (an official ViTa image encoder has it)")
    return np.asarray(state[key], np.float32)

  w = get("patch_embed.proj.weight")
  if w.ndim != 5 or w.shape[1] != 1:
    raise ValueError(f"{source}: '{prefix}patch_embed.proj.weight' has shape {w.shape}; expected "
                     "[D, 1, t, h, w] (the per-slice PatchEmbed)")
  dim = w.shape[0]
  if dim % num_heads:
    raise ValueError(f"{source}: width {dim} is not divisible by num_heads={num_heads}")
  hd = dim // num_heads
  pos_key = prefix + "enc_pos_embed"
  if pos_key in state:
    pos = np.asarray(state[pos_key], np.float32).reshape(-1, dim)
    ours = position_embedding_5d(num_lax, grid[0] - num_lax, tuple(grid[1:]), dim)
    if pos.shape[0] != 1 + ours.shape[0] or not np.allclose(pos[1:], ours, atol=1e-4) or np.abs(pos[0]).max() > 0:
      raise ValueError(f"{source}: '{pos_key}' is not the official 5-D embedding for grid {tuple(grid)} with "
                       f"{num_lax} LAX views (shape {tuple(state[pos_key].shape)})")
  depth = 1 + max(int(k[len(prefix + "encoder."):].split(".")[0]) for k in state
                  if k.startswith(prefix + "encoder.") and k[len(prefix + "encoder."):].split(".")[0].isdigit())
  blocks = {}
  for i in range(depth):
    b = f"encoder.{i}."
    qkv_w, qkv_b = get(b + "attn.qkv.weight"), get(b + "attn.qkv.bias")
    attn = {name: {"kernel": qkv_w[j * dim:(j + 1) * dim].T.reshape(dim, num_heads, hd),
                   "bias": qkv_b[j * dim:(j + 1) * dim].reshape(num_heads, hd)}
            for j, name in enumerate(("query", "key", "value"))}
    attn["out"] = {"kernel": get(b + "attn.proj.weight").T.reshape(num_heads, hd, dim),
                   "bias": get(b + "attn.proj.bias")}
    blocks[f"TransformerBlock_{i}"] = {
        "LayerNorm_0": {"scale": get(b + "norm1.weight"), "bias": get(b + "norm1.bias")},
        "LayerNorm_1": {"scale": get(b + "norm2.weight"), "bias": get(b + "norm2.bias")},
        "MultiHeadDotProductAttention_0": attn,
        "MLP_0": {"Dense_1": {"kernel": get(b + "mlp.fc1.weight").T, "bias": get(b + "mlp.fc1.bias")},
                  "Dense_0": {"kernel": get(b + "mlp.fc2.weight").T, "bias": get(b + "mlp.fc2.bias")}}}
  blocks["LayerNorm_0"] = {"scale": get("encoder_norm.weight"), "bias": get("encoder_norm.bias")}
  return {"params": {"patch_embed": {"kernel": w.reshape(dim, -1).T, "bias": get("patch_embed.proj.bias")},
                     "cls_token": get("cls_token").reshape(1, 1, dim), "blocks": blocks}}


def encoder_to_official(params: dict, *, num_lax: int, grid: tuple[int, int, int, int],
                        patch: tuple[int, int, int], prefix: str = PREFIX) -> dict[str, np.ndarray]:
  """The inverse of :func:`encoder_from_official`: an official-layout state dict (NumPy) of our encoder params,
  with the fixed ``enc_pos_embed``; ``torch.save({"state_dict": ...})`` of it loads in the official code."""
  p = params["params"]
  kernel = np.asarray(p["patch_embed"]["kernel"])
  dim = kernel.shape[1]
  out = {"patch_embed.proj.weight": kernel.T.reshape(dim, 1, *patch),
         "patch_embed.proj.bias": np.asarray(p["patch_embed"]["bias"]),
         "cls_token": np.asarray(p["cls_token"]).reshape(1, 1, dim),
         "enc_pos_embed": np.concatenate([np.zeros((1, dim), np.float32), position_embedding_5d(
             num_lax, grid[0] - num_lax, tuple(grid[1:]), dim)])[None],
         "encoder_norm.weight": np.asarray(p["blocks"]["LayerNorm_0"]["scale"]),
         "encoder_norm.bias": np.asarray(p["blocks"]["LayerNorm_0"]["bias"])}
  i = 0
  while f"TransformerBlock_{i}" in p["blocks"]:
    blk, b = p["blocks"][f"TransformerBlock_{i}"], f"encoder.{i}."
    attn = blk["MultiHeadDotProductAttention_0"]
    out[b + "attn.qkv.weight"] = np.concatenate([np.asarray(attn[n]["kernel"]).reshape(dim, dim).T
                                                 for n in ("query", "key", "value")])
    out[b + "attn.qkv.bias"] = np.concatenate([np.asarray(attn[n]["bias"]).reshape(dim)
                                               for n in ("query", "key", "value")])
    out[b + "attn.proj.weight"] = np.asarray(attn["out"]["kernel"]).reshape(dim, dim).T
    out[b + "attn.proj.bias"] = np.asarray(attn["out"]["bias"])
    for ours, theirs in (("LayerNorm_0", "norm1"), ("LayerNorm_1", "norm2")):
      out[b + theirs + ".weight"] = np.asarray(blk[ours]["scale"])
      out[b + theirs + ".bias"] = np.asarray(blk[ours]["bias"])
    for ours, theirs in (("Dense_1", "fc1"), ("Dense_0", "fc2")):
      out[b + f"mlp.{theirs}.weight"] = np.asarray(blk["MLP_0"][ours]["kernel"]).T
      out[b + f"mlp.{theirs}.bias"] = np.asarray(blk["MLP_0"][ours]["bias"])
    i += 1
  return {prefix + k: v.astype(np.float32) for k, v in out.items()}


def load_official_encoder(path: str, *, num_lax: int, grid: tuple[int, int, int, int], num_heads: int) -> dict:
  """:func:`read_state_dict` then :func:`encoder_from_official` (errors name ``path``)."""
  return encoder_from_official(read_state_dict(path), num_lax=num_lax, grid=grid, num_heads=num_heads, source=path)
