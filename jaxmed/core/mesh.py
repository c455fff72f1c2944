"""Device meshes and sharding helpers.

The mesh has three named axes, always in this order:

* ``data``  – pure data parallelism (batch split, params replicated);
* ``fsdp``  – batch split *and* params sharded (fully sharded data parallel);
* ``model`` – tensor parallelism, used only through explicit path rules.

A batch is split over ``("data", "fsdp")`` on its leading axis. Params are
replicated unless a path rule or the FSDP default says otherwise. Everything
works unchanged on one device, where every axis has size 1.
"""

from __future__ import annotations

import math
import re
from typing import Any, Mapping, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

MESH_AXES = ("data", "fsdp", "model")
BATCH_AXES = ("data", "fsdp")


def make_mesh(mesh_config: Mapping[str, int] | None = None, devices: Sequence[Any] | None = None) -> Mesh:
  """Builds a ``Mesh`` with axes ``(data, fsdp, model)``.

  Args:
    mesh_config: mapping with optional integer keys ``data``, ``fsdp`` and
      ``model``. At most one may be ``-1``, meaning "all remaining devices".
      Defaults to ``{"data": -1}``: plain data parallelism.
    devices: the devices to use; defaults to ``jax.devices()`` (all hosts).

  Returns:
    A mesh of shape ``(data, fsdp, model)``.
  """
  devices = list(jax.devices() if devices is None else devices)
  cfg = {"data": -1, "fsdp": 1, "model": 1}
  if mesh_config is not None:
    unknown = set(dict(mesh_config)) - set(cfg)
    if unknown:
      raise ValueError(f"mesh config: unknown axes {sorted(unknown)}; expected a subset of {list(MESH_AXES)}")
    cfg.update({k: int(v) for k, v in dict(mesh_config).items()})
  sizes = [cfg[a] for a in MESH_AXES]
  if sizes.count(-1) > 1:
    raise ValueError(f"mesh config {cfg}: at most one axis may be -1")
  known = math.prod(s for s in sizes if s != -1)
  if any(s == 0 or s < -1 for s in sizes) or len(devices) % known:
    raise ValueError(f"mesh config {cfg} does not divide the {len(devices)} available devices")
  sizes = [len(devices) // known if s == -1 else s for s in sizes]
  if math.prod(sizes) != len(devices):
    raise ValueError(f"mesh config {cfg} uses {math.prod(sizes)} devices but {len(devices)} are available; "
                     "set one axis to -1 to absorb the rest")
  return Mesh(np.asarray(devices, dtype=object).reshape(sizes), MESH_AXES)


def replicated(mesh: Mesh) -> NamedSharding:
  """Sharding that keeps a full copy of an array on every device."""
  return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Sharding that splits the leading (batch) axis over ``data`` and ``fsdp``."""
  return NamedSharding(mesh, P(BATCH_AXES))


def num_batch_shards(mesh: Mesh) -> int:
  return mesh.shape["data"] * mesh.shape["fsdp"]


def host_local_batch(global_batch: Any) -> Any:
  """Rows of a global batch that belong to this host (process).

  Every host builds the same global batch from the same seeded pipeline and
  keeps its contiguous slice: ``rows[i*n:(i+1)*n]`` for process ``i`` of ``p``.
  """
  p, i = jax.process_count(), jax.process_index()
  if p == 1:
    return global_batch

  def take(x):
    n = x.shape[0]
    if n % p:
      raise ValueError(f"global batch of {n} rows cannot be split over {p} processes")
    return x[i * (n // p):(i + 1) * (n // p)]

  return jax.tree.map(take, global_batch)


def shard_batch(local_batch: Any, mesh: Mesh) -> Any:
  """Turns host-local numpy arrays into global arrays split over the batch axes.

  Args:
    local_batch: pytree of arrays of shape ``[B_local, ...]``; ``B_local *
      process_count`` must be divisible by ``data * fsdp``.
    mesh: the mesh from :func:`make_mesh`.

  Returns:
    The same pytree of ``jax.Array`` with global shape ``[B_global, ...]``.
  """
  sharding = batch_sharding(mesh)
  shards = num_batch_shards(mesh)

  def put(x):
    x = np.asarray(x)
    if x.ndim == 0:
      raise ValueError("shard_batch: every batch leaf needs a leading batch axis; got a scalar")
    global_rows = x.shape[0] * jax.process_count()
    if global_rows % shards:
      raise ValueError(f"shard_batch: global batch of {global_rows} rows is not divisible by the "
                       f"{shards} batch shards (mesh data x fsdp); pick a batch size that is")
    return jax.make_array_from_process_local_data(sharding, x)

  return jax.tree.map(put, local_batch)


def _path_str(path) -> str:
  return "/".join(str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path)


def _fsdp_spec(shape: tuple[int, ...], fsdp: int, min_size: int) -> P:
  if fsdp == 1 or math.prod(shape) < min_size:
    return P()
  # Shard the largest dimension that fsdp divides; ties go to the last one.
  dims = sorted(range(len(shape)), key=lambda d: (shape[d], d), reverse=True)
  for d in dims:
    if shape[d] % fsdp == 0:
      spec = [None] * len(shape)
      spec[d] = "fsdp"
      return P(*spec)
  return P()


def tree_shardings(tree: Any, mesh: Mesh, rules: Sequence[tuple[str, P]] = (), *,
                   fsdp_min_size: int = 2**14) -> Any:
  """Per-leaf ``NamedSharding`` for a pytree of arrays or ``ShapeDtypeStruct``.

  Args:
    tree: params, optimiser state or a whole train state (abstract is fine).
    mesh: the mesh.
    rules: ``(regex, PartitionSpec)`` pairs tried in order with ``re.search``
      on the leaf's path, written ``"params/Dense_0/kernel"``. The first
      match wins. Optimiser moments share their parameter's path suffix, so
      one rule covers both.
    fsdp_min_size: leaves with fewer elements stay replicated under FSDP.

  Returns:
    A pytree of ``NamedSharding`` with the structure of ``tree``. Leaves that
    match no rule are sharded over ``fsdp`` along their largest divisible
    dimension when the mesh has ``fsdp > 1``, and replicated otherwise.
  """
  compiled = [(re.compile(pat), spec) for pat, spec in rules]

  def leaf(path, x):
    name = _path_str(path)
    shape = tuple(getattr(x, "shape", ()))
    for pat, spec in compiled:
      if pat.search(name):
        if len(spec) > len(shape):
          raise ValueError(f"sharding rule {pat.pattern!r} gives {spec} for {name} of shape {shape}")
        return NamedSharding(mesh, spec)
    return NamedSharding(mesh, _fsdp_spec(shape, mesh.shape["fsdp"], fsdp_min_size))

  return jax.tree_util.tree_map_with_path(leaf, tree)
