"""Logical axes of the decoder's params and their mapping onto the mesh ``(data, fsdp, model)``.

Every param gets logical axis names from its path (``embed``, ``vocab``,
``heads``, ``kv_heads``, ``mlp``, or ``None``). A rule table maps logical names
to mesh axes. The default, :data:`FSDP_RULES`, shards the ``embed`` dimension of
every matrix over ``data`` and ``fsdp`` (ZeRO-3 style FSDP) and the
``heads``/``mlp``/``vocab`` dimensions over ``model`` (tensor parallelism, a
no-op when ``model`` has size 1). A dimension that does not divide by its
mesh axes stays replicated.
"""

from __future__ import annotations

from typing import Any, Mapping

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

FSDP_RULES: dict[str, tuple[str, ...]] = {"embed": ("data", "fsdp"), "heads": ("model",), "kv_heads": ("model",),
                                          "mlp": ("model",), "vocab": ("model",)}


def logical_axes(path: tuple[str, ...]) -> tuple[str | None, ...]:
  """Logical names of a param's dimensions, from its path (``("layers_0", "self_attn", "q_proj", "kernel")``)."""
  module, leaf = path[-2], path[-1]
  if module == "embed_tokens":
    return ("vocab", "embed")
  if module == "lm_head":
    return ("embed", "vocab")
  if module in ("q_proj", "k_proj", "v_proj"):
    heads = "heads" if module == "q_proj" else "kv_heads"
    return ("embed", heads) if leaf == "kernel" else (heads,)
  if module == "o_proj":
    return ("heads", "embed")
  if module in ("gate_proj", "up_proj"):
    return ("embed", "mlp")
  if module == "down_proj":
    return ("mlp", "embed")
  # the Qwen2-VL vision tower (jaxmed.vlm.vision): same roles, its own names
  if module in ("qkv", "fc1", "mlp_0"):
    return ("embed", "mlp" if module != "qkv" else "heads") if leaf == "kernel" else (None,)
  if module in ("proj", "fc2", "mlp_2"):
    return ("heads" if module == "proj" else "mlp", "embed") if leaf == "kernel" else (None,)
  if module == "patch_embed":
    return (None, "embed")
  return (None,)  # norms


def param_shardings(params: Any, mesh: Mesh, rules: Mapping[str, tuple[str, ...]] | None = None) -> Any:
  """``NamedSharding`` for each param (a tree of arrays or ``ShapeDtypeStruct``)."""
  rules = FSDP_RULES if rules is None else rules

  def one(path, leaf):
    names = tuple(getattr(k, "key", str(k)) for k in path)
    axes = logical_axes(names)
    spec = []
    for dim, name in zip(leaf.shape, axes + (None,) * (len(leaf.shape) - len(axes))):
      mesh_axes = tuple(a for a in rules.get(name, ()) if a in mesh.shape) if name else ()
      size = int(np.prod([mesh.shape[a] for a in mesh_axes])) if mesh_axes else 1
      spec.append(mesh_axes if mesh_axes and size > 1 and dim % size == 0 else None)
    return NamedSharding(mesh, P(*spec))

  return jax.tree_util.tree_map_with_path(one, params)
