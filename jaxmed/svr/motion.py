"""Slice motion models: free per-slice rigid parameters, or a motion network over (stack, slice).

:class:`MotionINR` is a tanh MLP on Fourier features; :class:`SirenMotion` is
MetaSVR's motion network (a SIREN on the 2-vector (slice, stack)).

Both return the motion of every slice as ``[n_slices, 6]`` (rotation in
radians, translation in mm, :mod:`jaxmed.svr.geometry` conventions) and both
start at zero, i.e. at the stacks' own geometry. Parameters are stored in
scaled units (``UNITS``: 1 rad, 10 mm per unit) so that one Adam learning rate
moves rotations and translations at comparable rates.

The drift regulariser is MetaSVR's: ``mean(rot**2) + 1e-3 * mean(trans_mm**2)``.
The optional smoothness prior (not in MetaSVR; off unless ``smooth_weight``
is set) penalises the same quantity on the change between consecutive
slices of a stack, i.e. motion that is continuous in acquisition time; it
assumes sequential acquisition (slice index = acquisition order).
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from jaxmed.svr.inr import siren_layers

UNITS = np.array([1.0, 1.0, 1.0, 10.0, 10.0, 10.0], np.float32)


class FreeMotion(nn.Module):
  """One 6-vector per slice. ``__call__(stack_id [S], slice_pos [S]) -> [S, 6]``."""
  num_slices: int

  @nn.compact
  def __call__(self, stack_id: jnp.ndarray, slice_pos: jnp.ndarray) -> jnp.ndarray:
    p = self.param("motion", nn.initializers.zeros, (self.num_slices, 6))
    return p * UNITS


class MotionINR(nn.Module):
  """Motion as a function of (stack, slice position): one-hot stack + Fourier features -> MLP -> ``[S, 6]``.

  ``slice_pos`` is the slice index divided by the stack's slice count (in
  [0, 1]); the last layer starts at zero so the initial motion is zero.
  """
  num_stacks: int
  hidden: int = 64
  layers: int = 2
  frequencies: int = 8

  @nn.compact
  def __call__(self, stack_id: jnp.ndarray, slice_pos: jnp.ndarray) -> jnp.ndarray:
    freqs = np.pi * 2.0 ** np.arange(self.frequencies, dtype=np.float32)
    ang = slice_pos[:, None] * freqs[None]
    h = jnp.concatenate([nn.one_hot(stack_id, self.num_stacks), jnp.sin(ang), jnp.cos(ang)], -1)
    for _ in range(self.layers):
      h = jnp.tanh(nn.Dense(self.hidden)(h))
    return nn.Dense(6, kernel_init=nn.initializers.zeros)(h) * UNITS


class SirenMotion(nn.Module):
  """MetaSVR's motion network: a SIREN on the slice embedding ``(slice, stack)`` -> ``[S, 6]``.

  The embedding is ``[2 * slice_pos - 1, 2 * stack / max(num_stacks - 1, 1) - 1]`` (both in [-1, 1]); ``layers``
  sine layers of ``hidden`` units (MetaSVR: 2 x 64, first omega 40, hidden omega 32.5) and a linear output.
  MetaSVR's output layer keeps SIREN's random initialisation; here it starts at zero, so the initial motion is
  the stacks' own geometry, as for the other motion models.
  """
  num_stacks: int
  hidden: int = 64
  layers: int = 2
  first_omega: float = 40.0
  hidden_omega: float = 32.5

  @nn.compact
  def __call__(self, stack_id: jnp.ndarray, slice_pos: jnp.ndarray) -> jnp.ndarray:
    stack = 2.0 * stack_id.astype(jnp.float32) / max(self.num_stacks - 1, 1) - 1.0
    h = jnp.stack([2.0 * slice_pos - 1.0, stack], -1)
    h = siren_layers(h, self.hidden, self.layers, self.first_omega, self.hidden_omega)
    return nn.Dense(6, kernel_init=nn.initializers.zeros)(h) * UNITS


def motion_model(kind: str, num_slices: int, num_stacks: int, **kwargs) -> nn.Module:
  """``"free"`` (per-slice parameters), ``"inr"`` (:class:`MotionINR`) or ``"siren"`` (:class:`SirenMotion`)."""
  if kind == "free":
    return FreeMotion(num_slices)
  if kind == "inr":
    return MotionINR(num_stacks, **kwargs)
  if kind == "siren":
    return SirenMotion(num_stacks, **kwargs)
  raise ValueError(f"motion model {kind!r}; expected 'free', 'inr' or 'siren'")


def drift_penalty(motion: jnp.ndarray, weights: jnp.ndarray | None = None) -> jnp.ndarray:
  """MetaSVR's regulariser on ``[S, 6]`` motion (rad, mm); optional per-slice ``weights [S]`` (mean over slices)."""
  per_slice = jnp.mean(motion[:, :3] ** 2, -1) + 1e-3 * jnp.mean(motion[:, 3:] ** 2, -1)
  return jnp.mean(per_slice if weights is None else weights * per_slice)


def smoothness_penalty(motion: jnp.ndarray, stack: jnp.ndarray) -> jnp.ndarray:
  """``[S, 6]`` motion, ``[S]`` stack ids (slices of a stack consecutive, in acquisition order) -> scalar.

  Mean over consecutive same-stack pairs of ``|d rot|^2 + 1e-3 |d trans_mm|^2`` (per component, as
  :func:`drift_penalty`).
  """
  d = motion[1:] - motion[:-1]
  same = (stack[1:] == stack[:-1]).astype(motion.dtype)
  per_pair = jnp.mean(d[:, :3] ** 2, -1) + 1e-3 * jnp.mean(d[:, 3:] ** 2, -1)
  return jnp.sum(same * per_pair) / jnp.maximum(jnp.sum(same), 1.0)
