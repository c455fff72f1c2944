"""The training loop every experiment shares: resume, step, log, guard, checkpoint.

It is a plain function over explicit values (a state, a jitted step, a
step-indexed batch function), not a Trainer: no hooks, no callbacks. What it
guarantees is the workdir contract:

* it restores the latest checkpoint in ``run_dir`` and continues from there,
  so a rerun ends with bitwise the params of an uninterrupted run;
* ``metrics.jsonl`` keeps each logged step exactly once across reruns;
* metrics are checked for NaN/inf at every log and before every save, so a
  non-finite state is never checkpointed and the run stops with a message
  naming the step and the metric.
"""

from __future__ import annotations

from typing import Any, Callable

from jax.sharding import Mesh

from jaxmed.core import checkpoint as ckpt
from jaxmed.core.guards import check_finite
from jaxmed.core.mesh import host_local_batch, shard_batch
from jaxmed.core.metrics import MetricWriter, to_host
from jaxmed.core.progress import progress_bar, update_progress
from jaxmed.core.state import TrainState, step_rng


def train_loop(state: TrainState, train_step: Callable, batch_at: Callable[[int], Any], *, mesh: Mesh,
               run_dir: str, steps: int, save_every: int, keep: int = 3, log_every: int = 50,
               desc: str = "train", place_batch: bool = True) -> TrainState:
  """Runs ``train_step`` from the latest checkpoint (or ``state``) up to ``steps``.

  Args:
    state: the freshly initialised state (its layout is the restore target).
    train_step: ``(state, batch, rng) -> (state, metrics)``, e.g. from
      :func:`jaxmed.core.make_train_step`; its key is
      ``fold_in(state.rng, step)``.
    batch_at: ``step -> global batch`` (numpy pytree), e.g. ``dataset[step]``
      of :func:`jaxmed.core.step_batches`; each host keeps its rows.
    mesh: the mesh the batch is sharded over.
    run_dir: where ``checkpoints/`` and ``metrics.jsonl`` go.
    steps: total number of steps of the run (not of this call).
    save_every, keep: checkpoint interval and how many to keep; the last
      step is always saved.
    log_every: metrics are fetched, checked and written every this many steps.
    desc: progress bar label.
    place_batch: shard ``batch_at(step)`` over the mesh before the step
      (default). ``False`` hands it over as it is: an on-policy step (GRPO)
      takes host-side examples, samples from the current state and places
      its own arrays.

  Returns:
    The final state.
  """
  manager = ckpt.checkpoint_manager(run_dir, save_every=save_every, keep=keep)
  state, restored = ckpt.restore_latest(manager, state)
  start, last_saved = restored or 0, restored
  writer = MetricWriter(run_dir, resume_step=start)
  bar = progress_bar(steps, initial=start, desc=desc)
  try:
    for step in range(start, steps):
      batch = batch_at(step)
      if place_batch:
        batch = shard_batch(host_local_batch(batch), mesh)
      state, metrics = train_step(state, batch, step_rng(state, step))
      done = step + 1
      will_save = done % save_every == 0 or done == steps
      if done % log_every == 0 or will_save:
        host = to_host(metrics)
        check_finite(host, done, last_checkpoint=last_saved)
        writer.write(done, host)
        update_progress(bar, 0, {"loss": host["loss"]})
      if will_save and ckpt.save(manager, done, state, force=done == steps):
        last_saved = done
      update_progress(bar, 1)
  finally:
    bar.close()
    writer.close()
    manager.wait_until_finished()
    manager.close()
  return state
