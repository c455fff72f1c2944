"""Orbax checkpointing: save every N steps and at the end, keep the last K, resume the latest.

A checkpoint holds the whole train state. Restoring uses the live state as
the target, so arrays come back with the shardings of the current mesh.

:class:`CheckpointError` is the one error type of every weight and
checkpoint reader in jaxmed (orbax train states, safetensors, HF
directories, meta-initialisations); :func:`reading_checkpoint` wraps a
library's own error into it with the file, what was expected and the
original message.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator

import jax
import orbax.checkpoint as ocp


class CheckpointError(ValueError):
  """A checkpoint or weight file cannot be read or does not match the model: names the file and the field."""


@contextlib.contextmanager
def reading_checkpoint(path: str, expected: str) -> Iterator[None]:
  """Turns any error raised inside into one :class:`CheckpointError` naming ``path`` and ``expected``.

  Usage: ``with reading_checkpoint(f, "a safetensors file of TimesFM weights"): load_file(f)``.
  """
  try:
    yield
  except CheckpointError:
    raise
  except Exception as e:  # noqa: BLE001  safetensors, orbax, tensorstore and json raise their own types
    raise CheckpointError(f"{path}: could not read {expected} ({type(e).__name__}: {e})") from e


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
    raise CheckpointError(f"{manager.directory}/{step}: could not restore the train state of step {step}: "
                          f"expected the model/optimiser state of this config ({type(e).__name__}: {e}). "
                          "Use a fresh --workdir or the config the run was started with.") from e
  return restored, step
