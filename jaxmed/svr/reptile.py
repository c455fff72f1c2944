"""Reptile meta-learning of the SVR initialisation (Nichol et al. 2018; MetaSVR).

For each training subject in turn, start from the meta-parameters, fit the
subject for a few inner steps, and move the meta-parameters towards the
result: the meta-gradient is ``meta - inner`` fed to a meta optimiser (Adam,
as MetaSVR). Only groups shared across subjects are meta-learned: the volume
INR, and the motion model when it is an INR over (stack, slice); per-slice
scales, variances and free per-slice motion are per subject and start fresh.
The meta-initialisation is saved and restored with orbax.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Sequence

import jax
import numpy as np
import optax
import orbax.checkpoint as ocp

from jaxmed import core
from jaxmed.svr.motion import MotionINR, SirenMotion
from jaxmed.svr.reconstruct import SVRModel


def meta_groups(model: SVRModel, meta_motion: bool = True) -> tuple[str, ...]:
  """The parameter groups a meta-initialisation carries for ``model``.

  Always the volume; also the motion network (:class:`MotionINR`, :class:`SirenMotion`) when ``meta_motion``.
  Free per-slice motion has no parameters shared across subjects and is never meta-learned.
  """
  shared_motion = isinstance(model.motion, (MotionINR, SirenMotion))
  return ("volume", "motion") if shared_motion and meta_motion else ("volume",)


def reptile_update(meta: dict[str, Any], inner: dict[str, Any], tx: optax.GradientTransformation,
                   opt_state: Any) -> tuple[dict[str, Any], Any]:
  """One Reptile step: ``meta <- meta - tx(meta - inner)`` over the groups in ``meta``."""
  grads = jax.tree.map(lambda m, i: m - i, meta, {g: inner[g] for g in meta})
  updates, opt_state = tx.update(grads, opt_state, meta)
  return optax.apply_updates(meta, updates), opt_state


def meta_learn(model: SVRModel, subjects: Sequence[dict[str, Any]], inner_fit: Callable[..., dict[str, Any]], *,
               epochs: int, meta_lr: float, key: jax.Array, optimizer: str = "adam", meta_motion: bool = True,
               progress: bool = True) -> dict[str, Any]:
  """Reptile over ``subjects`` (slice sets).

  Args:
    inner_fit: ``(params, slice_set, key) -> fitted params`` (e.g. :func:`~jaxmed.svr.reconstruct.fit` with a
      few steps); it gets the meta-parameters as its starting point.
    optimizer: ``"adam"`` (MetaSVR) or ``"sgd"`` (the original Reptile, ``meta_lr`` = its epsilon).
    meta_motion: also meta-learn a shared motion network (see :func:`meta_groups`).

  Returns:
    The meta-parameters: ``{group: params}`` for :func:`meta_groups`.
  """
  groups = meta_groups(model, meta_motion)
  key, k0 = jax.random.split(key)
  init = model.init(k0, subjects[0])
  meta = {g: init[g] for g in groups}
  tx = optax.adam(meta_lr) if optimizer == "adam" else optax.sgd(meta_lr)
  opt_state = tx.init(meta)
  rng = np.random.default_rng(int(jax.random.randint(key, (), 0, 2 ** 30)))
  bar = core.progress_bar(epochs * len(subjects), desc="reptile") if progress else None
  for _ in range(epochs):
    for i in rng.permutation(len(subjects)):
      key, sub = jax.random.split(key)
      inner = inner_fit(dict(meta), subjects[i], sub)
      meta, opt_state = reptile_update(meta, inner, tx, opt_state)
      if bar is not None:
        core.update_progress(bar, 1)
  if bar is not None:
    bar.close()
  return meta


def save_meta_init(path: str, meta: dict[str, Any]) -> None:
  """Writes the meta-initialisation to the directory ``path`` (orbax, overwriting)."""
  ckptr = ocp.StandardCheckpointer()
  ckptr.save(os.path.abspath(path), meta, force=True)
  ckptr.wait_until_finished()


def load_meta_init(path: str, like: dict[str, Any] | None = None) -> dict[str, Any]:
  """Reads a meta-initialisation written by :func:`save_meta_init` (``like``: a template with the same tree)."""
  if not os.path.isdir(path):
    raise FileNotFoundError(f"{path}: no meta-initialisation directory; expected one written by save_meta_init")
  ckptr = ocp.StandardCheckpointer()
  with core.reading_checkpoint(path, "an orbax meta-initialisation written by save_meta_init"):
    return ckptr.restore(os.path.abspath(path), like) if like is not None else ckptr.restore(os.path.abspath(path))
