"""Released OTiS weights (oetu/otis, ``models_vit.py`` / ``models_otis.py`` state dicts) onto :class:`OTiSEncoder`.

The official checkpoints are ``torch.save`` files (``{"model": state_dict, "domain_offsets": ...}``), read here
without torch by :func:`jaxmed.io.load_torch_checkpoint`; a safetensors export of the same state dict loads too.
Tensor map (timm's ``VisionTransformer`` names; ``D`` the width, ``q`` the patch width):

- ``patch_embed.proj.weight [D, 1, 1, q]`` / ``.bias`` -> ``patch_embed`` (a ``(1, q)`` convolution with stride
  ``(1, q)`` is a dense layer on each patch); ``patch_embed.norm`` -> ``patch_norm``;
- ``pos_embed_y.weight [V + 1, D/2]`` -> ``pos_embed_y`` (row 0 the padding row);
  ``pos_embed_x [1, P_max + 1, D/2]`` is the fixed sin-cos table and is checked against ours, not copied;
- ``cls_token``; ``blocks.{i}.norm1/norm2``, ``blocks.{i}.attn.qkv``, ``blocks.{i}.attn.mha.in_proj_weight``
  / ``in_proj_bias`` (q, k, v stacked), ``blocks.{i}.attn.mha.out_proj``, ``blocks.{i}.attn.proj``,
  ``blocks.{i}.mlp.fc1/fc2``; the final ``norm`` (MAE / class-token checkpoints) or ``fc_norm`` (global-pool
  fine-tuned ones).

Sizes (width, depth, variates, patch width, ``P_max``) come from the tensors; heads must be given (base: 3,
large: 6, huge: 8). A missing tensor or a mismatched shape raises naming the file and the tensor.
"""

from __future__ import annotations

import os

import numpy as np

from jaxmed.eeg.otis import OTiSEncoder, temporal_embedding
from jaxmed.io.torch_checkpoint import tensor_getter


def read_otis_state(path: str) -> dict[str, np.ndarray]:
  """The state dict of an official checkpoint (``.pth``: ``{"model": ...}`` or bare) or a safetensors file."""
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path}: file not found")
  if path.endswith(".safetensors"):
    from safetensors.numpy import load_file
    return dict(load_file(path))
  from jaxmed.io import load_torch_checkpoint
  obj = load_torch_checkpoint(path)
  state = obj.get("model", obj) if isinstance(obj, dict) else None
  if not isinstance(state, dict):
    raise ValueError(f"{path}: expected an OTiS checkpoint ({{'model': state_dict}}) or a state dict")
  return {k: np.asarray(v) for k, v in state.items() if isinstance(v, np.ndarray)}


def encoder_from_official(state: dict[str, np.ndarray], *, heads: int, path: str = "") -> tuple[OTiSEncoder, dict]:
  """``(encoder, variables)`` from an official OTiS state dict (module docstring)."""
  get = tensor_getter(state, path, "OTiS")

  w = get("patch_embed.proj.weight")
  if w.ndim != 4 or w.shape[1:3] != (1, 1):
    raise ValueError(f"{path}: 'patch_embed.proj.weight' has shape {w.shape}; expected [D, 1, 1, patch] "
                     "(one input channel, patches of one variate)")
  d, q = w.shape[0], w.shape[3]
  depth = len({k.split(".")[1] for k in state if k.startswith("blocks.")})
  table = get("pos_embed_y.weight")
  pos_x = get("pos_embed_x")
  max_patches = pos_x.shape[1] - 1
  if not np.allclose(pos_x[0], temporal_embedding(max_patches, d), atol=1e-5):
    raise ValueError(f"{path}: 'pos_embed_x' is not the 1-D sin-cos table OTiS builds; refusing to guess")

  def dense(prefix, din, dout):
    return {"kernel": get(prefix + ".weight", (dout, din)).T, "bias": get(prefix + ".bias", (dout,))}

  def norm(prefix):
    return {"scale": get(prefix + ".weight", (d,)), "bias": get(prefix + ".bias", (d,))}

  params = {"patch_embed": {"kernel": w[:, 0, 0, :].T, "bias": get("patch_embed.proj.bias", (d,))},
            "patch_norm": norm("patch_embed.norm"), "pos_embed_y": table, "cls_token": get("cls_token", (1, 1, d)),
            "norm": norm("norm" if "norm.weight" in state else "fc_norm")}
  hidden = get("blocks.0.mlp.fc1.weight").shape[0]
  for i in range(depth):
    b = f"blocks.{i}"
    in_w, in_b = get(f"{b}.attn.mha.in_proj_weight", (3 * d, d)), get(f"{b}.attn.mha.in_proj_bias", (3 * d,))
    attn = {"qkv": dense(f"{b}.attn.qkv", d, 3 * d), "out_proj": dense(f"{b}.attn.mha.out_proj", d, d),
            "proj": dense(f"{b}.attn.proj", d, d)}
    for j, s in enumerate("qkv"):
      attn[f"in_proj_{s}"] = {"kernel": in_w[j * d:(j + 1) * d].T, "bias": in_b[j * d:(j + 1) * d]}
    params[f"blocks_{i}"] = {"norm1": norm(f"{b}.norm1"), "norm2": norm(f"{b}.norm2"), "attn": attn,
                             "mlp": {"Dense_1": dense(f"{b}.mlp.fc1", d, hidden),
                                     "Dense_0": dense(f"{b}.mlp.fc2", hidden, d)}}
  encoder = OTiSEncoder(patch=q, dim=d, depth=depth, heads=heads, num_variates=table.shape[0] - 1,
                        max_patches=max_patches)
  return encoder, {"params": params}


def load_official_otis(path: str, *, heads: int) -> tuple[OTiSEncoder, dict]:
  """``(encoder, variables)`` from an official OTiS checkpoint file (``.pth`` or ``.safetensors``)."""
  return encoder_from_official(read_otis_state(path), heads=heads, path=path)
