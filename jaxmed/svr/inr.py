"""Volume implicit neural representations: SIREN and a pure-JAX multiresolution hash grid.

Both map normalised coordinates ``u in [-1, 1]^3`` (the reconstruction's
bounding box) to a non-negative intensity (softplus output).

* :class:`Siren` (Sitzmann et al. 2020): sine layers, first ``omega_0 = 30``,
  hidden ``omega_0 = 30``, SIREN's uniform initialisation.
* :class:`HashGrid` (Mueller et al. 2022, Instant-NGP) as NeSVoR and MetaSVR
  configure tiny-cuda-nn: ``L`` levels of ``F`` features, level resolution
  ``floor(N_min * b**l)``, a ``2**T``-entry table per level (dense indexing
  while the level grid fits, the spatial hash ``xor(x*1, y*2654435761,
  z*805459861) mod 2**T`` beyond), trilinear interpolation, then a small ReLU
  MLP. Pure JAX: no tiny-cuda-nn build, runs wherever JAX runs.
"""

from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

PRIMES = (1, 2654435761, 805459861)


def _siren_init(omega: float, first: bool):
  def init(key, shape, dtype=jnp.float32):
    fan_in = shape[0]
    bound = 1.0 / fan_in if first else math.sqrt(6.0 / fan_in) / omega
    return jax.random.uniform(key, shape, dtype, -bound, bound)
  return init


def siren_layers(h: jnp.ndarray, hidden: int, layers: int, first_omega: float, hidden_omega: float) -> jnp.ndarray:
  """``layers`` sine layers ``sin(omega (W h + b))`` with SIREN's initialisation: ``[N, D] -> [N, hidden]``.

  Call inside an ``nn.compact`` method (the layers are created in the caller's scope).
  """
  for i in range(layers):
    omega = first_omega if i == 0 else hidden_omega
    h = jnp.sin(omega * nn.Dense(hidden, kernel_init=_siren_init(omega, i == 0),
                                 bias_init=nn.initializers.uniform(1.0 / h.shape[-1]))(h))
  return h


class Siren(nn.Module):
  """SIREN: ``u [N, 3] -> intensity [N]`` (MetaSVR's volume: 6 x 330, first omega 40, hidden omega 32.5)."""
  hidden: int = 128
  layers: int = 3
  first_omega: float = 30.0
  hidden_omega: float = 30.0

  @nn.compact
  def __call__(self, u: jnp.ndarray, progress: jnp.ndarray | float = 1.0) -> jnp.ndarray:
    del progress  # a SIREN has no level schedule
    h = siren_layers(u, self.hidden, self.layers, self.first_omega, self.hidden_omega)
    out = nn.Dense(1, kernel_init=_siren_init(self.hidden_omega, False))(h)[..., 0]
    return jax.nn.softplus(out)


def level_resolutions(levels: int, base_resolution: int, per_level_scale: float) -> list[int]:
  return [int(math.floor(base_resolution * per_level_scale ** l)) for l in range(levels)]


class HashGrid(nn.Module):
  """Multiresolution hash encoding + ReLU MLP: ``u [N, 3] -> intensity [N]``."""
  levels: int = 12
  features: int = 2
  log2_table: int = 19
  base_resolution: int = 6
  per_level_scale: float = 1.3819
  mlp: Sequence[int] = (64, 64)

  def encode(self, u: jnp.ndarray, progress: jnp.ndarray | float = 1.0) -> jnp.ndarray:
    """``u [N, 3]`` in [-1, 1] -> features ``[N, levels * features]``.

    ``progress`` in [0, 1] opens the levels coarse to fine (BARF's schedule, Lin et al. 2021: level ``l``
    gets weight ``(1 - cos(pi * clip(a - l, 0, 1))) / 2`` with ``a = progress * levels``); 1 uses all levels.
    Joint motion and volume fits need it: fine levels fitted early lock in the misalignment.
    """
    x = jnp.clip((u + 1.0) / 2.0, 0.0, 1.0)
    table_size = 2 ** self.log2_table
    feats = []
    corners = np.array([[(c >> 0) & 1, (c >> 1) & 1, (c >> 2) & 1] for c in range(8)], np.uint32)
    for level, res in enumerate(level_resolutions(self.levels, self.base_resolution, self.per_level_scale)):
      dense = (res + 1) ** 3 <= table_size
      size = (res + 1) ** 3 if dense else table_size
      table = self.param(f"table_{level}", nn.initializers.uniform(1e-4), (size, self.features))
      pos = x * res
      lo = jnp.clip(jnp.floor(pos), 0, res - 1)
      w = pos - lo
      idx = lo.astype(jnp.uint32)[:, None, :] + corners[None]            # [N, 8, 3]
      if dense:
        flat = idx[..., 0] + (res + 1) * (idx[..., 1] + (res + 1) * idx[..., 2])
      else:
        flat = (idx[..., 0] * np.uint32(PRIMES[0])) ^ (idx[..., 1] * np.uint32(PRIMES[1])) \
            ^ (idx[..., 2] * np.uint32(PRIMES[2]))
        flat = flat % np.uint32(table_size)
      vals = table[flat.astype(jnp.int32)]                                # [N, 8, F]
      cw = jnp.where(corners[None].astype(bool), w[:, None, :], 1.0 - w[:, None, :]).prod(-1)  # [N, 8]
      ramp = jnp.clip(progress * self.levels - level + 1.0, 0.0, 1.0)
      feats.append(jnp.einsum("nc,ncf->nf", cw, vals) * (1.0 - jnp.cos(jnp.pi * ramp)) / 2.0)
    return jnp.concatenate(feats, axis=-1)

  @nn.compact
  def __call__(self, u: jnp.ndarray, progress: jnp.ndarray | float = 1.0) -> jnp.ndarray:
    h = self.encode(u, progress)
    for width in self.mlp:
      h = nn.relu(nn.Dense(width)(h))
    return jax.nn.softplus(nn.Dense(1)(h)[..., 0])


def volume_inr(kind: str, **kwargs) -> nn.Module:
  """``"siren"``, ``"hash"`` or ``"grid"``, with that module's fields as keyword arguments."""
  kinds = {"siren": Siren, "hash": HashGrid, "grid": VoxelGrid}
  if kind not in kinds:
    raise ValueError(f"volume INR {kind!r}; expected one of {sorted(kinds)}")
  return kinds[kind](**kwargs)


class VoxelGrid(nn.Module):
  """A fixed-resolution voxel grid read by trilinear interpolation: ``u [N, 3] -> [N]``.

  Not an INR: the explicit baseline, and the way to put a known volume (e.g. the ground truth for a
  motion-only fit) into the imaging model. ``init_volume`` (``[X, Y, Z]``, spanning the bounding box
  corner to corner) sets its initial values; zeros otherwise.
  """
  shape: tuple[int, int, int]
  init_volume: np.ndarray | None = None

  @nn.compact
  def __call__(self, u: jnp.ndarray, progress: jnp.ndarray | float = 1.0) -> jnp.ndarray:
    del progress
    init = (lambda *_: jnp.asarray(self.init_volume, jnp.float32)) if self.init_volume is not None \
        else nn.initializers.zeros
    grid = self.param("grid", init, tuple(self.shape))
    idx = (u + 1.0) / 2.0 * (jnp.array(self.shape, jnp.float32) - 1.0)
    return jax.scipy.ndimage.map_coordinates(grid, [idx[:, 0], idx[:, 1], idx[:, 2]], order=1, mode="constant",
                                             cval=0.0)
