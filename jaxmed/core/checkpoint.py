"""Orbax checkpointing: save every N steps and at the end, keep the last K, resume the latest.

A checkpoint holds the whole train state. Restoring uses the live state as
the target, so arrays come back with the shardings of the current mesh.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp


def checkpoint_manager(workdir: str, *, save_every: int, keep: int = 3) -> ocp.CheckpointManager:
  """Manager for ``<workdir>/checkpoints``.

  Args:
    workdir: the experiment's workdir.
    save_every: save when ``step % save_every == 0`` (the last step is saved
      with ``force=True`` by :func:`save`).
    keep: how many of the most recent checkpoints to keep.
  """
  if save_every < 1 or keep < 1:
    raise ValueError(f"checkpoint_manager: save_every={save_every} and keep={keep} must be >= 1")
  directory = os.path.abspath(os.path.join(workdir, "checkpoints"))
  options = ocp.CheckpointManagerOptions(save_interval_steps=save_every, max_to_keep=keep, create=True)
  return ocp.CheckpointManager(directory, options=options)


def save(manager: ocp.CheckpointManager, step: int, state: Any, *, force: bool = False) -> bool:
  """Saves ``state`` at ``step`` if the interval (or ``force``) says so. Returns whether it saved."""
  return manager.save(int(step), args=ocp.args.StandardSave(state), force=force)


def restore_latest(manager: ocp.CheckpointManager, state: Any) -> tuple[Any, int | None]:
  """Restores the latest checkpoint into the structure and shardings of ``state``.

  Returns:
    ``(state, step)``; ``step`` is ``None`` (and ``state`` unchanged) when the
    directory holds no checkpoint yet.
  """
  step = manager.latest_step()
  if step is None:
    return state, None
  target = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
  try:
    restored = manager.restore(step, args=ocp.args.StandardRestore(target))
  except Exception as e:  # orbax raises many types; one message that names the path helps more
    raise RuntimeError(f"could not restore checkpoint step {step} from {manager.directory}: the saved "
                       f"state does not match this config's model/optimiser ({type(e).__name__}: {e}). "
                       "Use a fresh --workdir or the config the run was started with.") from e
  return restored, step
