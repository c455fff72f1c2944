"""Hugging Face checkpoints <-> jaxmed decoder params, with every key and shape checked.

A local checkpoint directory holds ``config.json`` and either
``model.safetensors`` or shards ``*.safetensors`` with
``model.safetensors.index.json``; both directions stream tensor by tensor
(:mod:`jaxmed.llm.safetensors_io`). :func:`hf_param_map` lists, for every
jaxmed param path, its HF key and the transform between them (``"T"``:
Dense kernels are HF weights transposed; ``"id"``: unchanged). Loading
consumes each HF key exactly once; a missing key, an unexpected key or a
wrong shape raises :class:`CheckpointError` naming the key and the file.
"""

from __future__ import annotations

import json
import os
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from jaxmed.core.checkpoint import CheckpointError, reading_checkpoint
from jaxmed.core.stage import atomic_stage
from jaxmed.llm.config import LMConfig
from jaxmed.llm.model import Decoder
from jaxmed.llm.safetensors_io import INDEX_FILE, SINGLE_FILE, StoredTensor, read_header, write_shards
from jaxmed.llm.sharding import param_shardings



def hf_param_map(config: LMConfig) -> dict[tuple[str, ...], tuple[str, str]]:
  """``{param path: (HF key, transform)}`` with transform ``"T"`` (transpose) or ``"id"``."""
  m: dict[tuple[str, ...], tuple[str, str]] = {("embed_tokens", "embedding"): ("model.embed_tokens.weight", "id"),
                                               ("norm", "weight"): ("model.norm.weight", "id")}
  for i in range(config.num_layers):
    pre, hf = f"layers_{i}", f"model.layers.{i}"
    for norm in ("input_layernorm", "post_attention_layernorm"):
      m[(pre, norm, "weight")] = (f"{hf}.{norm}.weight", "id")
    for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
      m[(pre, "self_attn", proj, "kernel")] = (f"{hf}.self_attn.{proj}.weight", "T")
      if config.qkv_bias and proj != "o_proj":
        m[(pre, "self_attn", proj, "bias")] = (f"{hf}.self_attn.{proj}.bias", "id")
    if config.qk_norm:
      for norm in ("q_norm", "k_norm"):
        m[(pre, "self_attn", norm, "weight")] = (f"{hf}.self_attn.{norm}.weight", "id")
    for proj in ("gate_proj", "up_proj", "down_proj"):
      m[(pre, "mlp", proj, "kernel")] = (f"{hf}.mlp.{proj}.weight", "T")
  if not config.tie_embeddings:
    m[("lm_head", "kernel")] = ("lm_head.weight", "T")
  return m


def read_tensors(local_dir: str) -> tuple[dict[str, StoredTensor], dict[str, str]]:
  """Every tensor of the checkpoint, lazily (:class:`~jaxmed.llm.safetensors_io.StoredTensor`: only the
  headers are read here; ``np.asarray`` reads one tensor's bytes), and the file each comes from."""
  index = os.path.join(local_dir, INDEX_FILE)
  if os.path.exists(index):
    with reading_checkpoint(index, "a JSON safetensors index"), open(index) as f:
      weight_map = json.load(f).get("weight_map")
    if not isinstance(weight_map, dict):
      raise CheckpointError(f"{index}: field 'weight_map' must map tensor names to shard files")
    files = sorted(set(weight_map.values()))
  elif os.path.exists(os.path.join(local_dir, SINGLE_FILE)):
    files, weight_map = [SINGLE_FILE], None
  else:
    raise CheckpointError(f"{local_dir}: no {SINGLE_FILE} and no {INDEX_FILE}")
  tensors, origin = {}, {}
  for name in files:
    path = os.path.join(local_dir, name)
    if not os.path.exists(path):
      raise CheckpointError(f"{index}: shard file {name!r} is listed but missing")
    for key, stored in read_header(path).items():
      if key in tensors:
        raise CheckpointError(f"{path}: tensor {key!r} also appears in {origin[key]}")
      if weight_map is not None and weight_map.get(key) != name:
        raise CheckpointError(f"{path}: tensor {key!r} is not listed for this shard in {INDEX_FILE}")
      tensors[key], origin[key] = stored, path
  return tensors, origin


# transform name -> (HF tensor -> param, param shape -> HF tensor shape, param -> HF tensor)
TRANSFORMS: dict[str, tuple[Any, Any, Any]] = {
    "T": (lambda a: a.T, lambda shape: tuple(shape[::-1]), lambda a: a.T),
    "id": (lambda a: a, tuple, lambda a: a),
}


def _flat(tree) -> dict[tuple[str, ...], Any]:
  return {tuple(getattr(k, "key", str(k)) for k in path): leaf
          for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def place_pieces(value: np.ndarray, sharding: jax.sharding.Sharding, dtype: Any) -> jax.Array:
  """``value`` (host; a view is fine) as a global array with ``sharding``, one device's piece copied at a time.

  Like ``jax.make_array_from_callback``, which first makes every local piece
  on the host and then transfers them together (twice the tensor at its
  peak); each piece here is freed once it is on its device.
  """
  pieces = [jax.device_put(np.ascontiguousarray(value[idx], dtype=dtype), device)
            for device, idx in sharding.addressable_devices_indices_map(value.shape).items()]
  return jax.make_array_from_single_device_arrays(value.shape, sharding, pieces)


def tensors_to_params(tensors: dict[str, np.ndarray], origin: dict[str, str], mapping: dict, abstract: Any, *,
                      where: str, dtype: Any = jnp.float32, mesh: Mesh | None = None, rules: dict | None = None,
                      transforms: dict | None = None, what: str = "the model") -> dict:
  """Params (nested dict) from HF ``tensors``, consuming every key exactly once.

  ``mapping`` is ``{param path: (HF key, transform name)}``; ``abstract`` the
  params' shapes (``jax.eval_shape`` of ``init``). A missing key, a wrong
  shape or a leftover tensor raises :class:`CheckpointError` naming the key
  and its file (``origin``); ``where`` names the checkpoint directory.

  Streamed: tensors (arrays, or lazy :class:`StoredTensor` from
  :func:`read_tensors`) are read one at a time; with ``mesh`` each is cut
  straight into its ``NamedSharding``'s pieces (:func:`place_pieces`), so
  host memory stays at about one tensor.
  """
  transforms = {**TRANSFORMS, **(transforms or {})}
  flat_abstract = _flat(abstract)
  if set(flat_abstract) != set(mapping):  # a bug in the table, not in the checkpoint
    raise AssertionError(f"param map out of sync with the model: {set(flat_abstract) ^ set(mapping)}")
  flat_shardings = _flat(param_shardings(abstract, mesh, rules)) if mesh is not None else {}
  tensors = dict(tensors)
  flat = {}
  for path, (key, transform) in mapping.items():
    if key not in tensors:
      raise CheckpointError(f"{where}: tensor {key!r} is missing (needed for param {'/'.join(path)})")
    raw = tensors.pop(key)
    to_param, raw_shape, _ = transforms[transform]
    expected = raw_shape(flat_abstract[path].shape)
    if tuple(raw.shape) != expected:
      raise CheckpointError(f"{origin[key]}: tensor {key!r} has shape {tuple(raw.shape)}, expected {expected}")
    value = to_param(np.asarray(raw))   # read from disk here; the transform is a view
    if mesh is None:
      flat[path] = jnp.asarray(value.astype(dtype))
    else:
      flat[path] = place_pieces(value, flat_shardings[path], dtype)
    del raw, value
  if tensors:
    key = sorted(tensors)[0]
    raise CheckpointError(f"{origin[key]}: unexpected tensor {key!r} ({len(tensors)} unused in all); "
                          f"{what} has no parameter for it")
  params: dict = {}
  for path, value in flat.items():
    node = params
    for k in path[:-1]:
      node = node.setdefault(k, {})
    node[path[-1]] = value
  return params


def gather(x: jax.Array) -> np.ndarray:
  """One param as a host array: ``device_get``, or an all-gather over processes when other hosts hold parts."""
  if isinstance(x, jax.Array) and not x.is_fully_addressable:
    from jax.experimental import multihost_utils
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))
  return np.asarray(jax.device_get(x))


def iter_tensors(params: dict, mapping: dict, *, dtype: Any = None, transforms: dict | None = None):
  """``(HF key, contiguous NumPy array)`` pairs, each param gathered to the host only when its turn comes."""
  transforms = {**TRANSFORMS, **(transforms or {})}
  for path, (key, transform) in mapping.items():
    node = params
    for k in path:
      node = node[k]
    value = gather(node)
    if dtype is not None:
      value = value.astype(dtype)
    yield key, np.ascontiguousarray(transforms[transform][2](value))


def params_to_tensors(params: dict, mapping: dict, *, dtype: Any = None, transforms: dict | None = None) -> dict:
  """The inverse of :func:`tensors_to_params`: ``{HF key: contiguous NumPy array}`` (all in host memory)."""
  return dict(iter_tensors(params, mapping, dtype=dtype, transforms=transforms))


def export_hf(local_dir: str, hf_config: Any, tensors, *, extras: Sequence = (), max_shard_size: int = 5 * 2 ** 30
              ) -> None:
  """Writes ``hf_config``, the ``(key, array)`` pairs of ``tensors`` in safetensors shards, and ``extras``.

  The directory appears atomically (:func:`jaxmed.core.atomic_stage`). In a
  multi-process run every process walks ``tensors`` (each param's gather is
  collective) and process 0 alone writes.
  """
  if jax.process_index() != 0:
    for _ in tensors:
      pass
    return
  with atomic_stage(local_dir) as tmp:
    hf_config.save_pretrained(tmp)
    write_shards(tensors, tmp, max_shard_bytes=max_shard_size)
    for extra in extras:
      extra.save_pretrained(tmp)


def load_pretrained(local_dir: str, *, mesh: Mesh | None = None, dtype: Any = jnp.float32,
                    compute_dtype: str | None = None, rules: dict | None = None) -> tuple[Decoder, dict]:
  """``(model, params)`` from a local HF checkpoint directory.

  Args:
    local_dir: holds ``config.json`` and the safetensors file(s).
    mesh: if given, each param is placed with its :func:`param_shardings` sharding.
    dtype: the params' dtype. compute_dtype: the model's compute dtype
      (default: ``dtype``'s name).
    rules: logical-to-mesh rules (default :data:`~jaxmed.llm.sharding.FSDP_RULES`).
  """
  import transformers

  cfg_path = os.path.join(local_dir, "config.json")
  if not os.path.exists(cfg_path):
    raise CheckpointError(f"{local_dir}: config.json is missing")
  with reading_checkpoint(cfg_path, "a transformers model config (JSON)"):
    hf_config = transformers.AutoConfig.from_pretrained(local_dir, local_files_only=True)
  config = LMConfig.from_hf(hf_config, dtype=compute_dtype or jnp.dtype(dtype).name)
  model = Decoder(config)
  abstract = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros((1, 1), jnp.int32)))["params"]
  tensors, origin = read_tensors(local_dir)
  if config.tie_embeddings and "lm_head.weight" in tensors:  # some tied checkpoints store the copy too
    if not np.array_equal(tensors["lm_head.weight"], tensors.get("model.embed_tokens.weight")):
      raise CheckpointError(f"{origin['lm_head.weight']}: 'lm_head.weight' differs from 'model.embed_tokens.weight'"
                            " but config.json says tie_word_embeddings=true")
    tensors.pop("lm_head.weight")
  params = tensors_to_params(tensors, origin, hf_param_map(config), abstract, where=local_dir, dtype=dtype,
                             mesh=mesh, rules=rules, what=f"the {config.family} model")
  return model, params


def save_pretrained(model: Decoder, params: dict, local_dir: str, *, dtype: Any = None, extras: Sequence = (),
                    max_shard_size: int = 5 * 2 ** 30) -> None:
  """Writes ``config.json`` and the safetensors weights that transformers and vLLM load.

  One ``model.safetensors`` up to ``max_shard_size`` bytes, else Hugging
  Face's shards ``model-0000i-of-0000n.safetensors`` with
  ``model.safetensors.index.json``. Params are gathered to the host one at a
  time and only one shard is held (:func:`export_hf`). ``extras`` are objects
  saved into the same directory with their own ``save_pretrained`` (the
  tokenizer). The directory is written atomically: it appears whole, with its
  completion marker, or not at all, and an earlier ``local_dir`` is replaced.
  """
  export_hf(local_dir, model.config.to_hf(), iter_tensors(params, hf_param_map(model.config), dtype=dtype),
            extras=extras, max_shard_size=max_shard_size)
