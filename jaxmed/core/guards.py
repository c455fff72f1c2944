"""Guards: stop on non-finite metrics, and count compilations of a jitted step."""

from __future__ import annotations

import contextlib
import math
from typing import Iterator, Mapping

import jax


class NonFiniteError(FloatingPointError):
  """Raised when a logged metric is NaN or infinite; training must stop."""


def check_finite(metrics: Mapping[str, float], step: int, *, last_checkpoint: int | None = None) -> None:
  """Raises :class:`NonFiniteError` naming the step and metric if any value is not finite.

  Args:
    metrics: host floats, e.g. from :func:`jaxmed.core.metrics.to_host`.
    step: the step that produced them.
    last_checkpoint: step of the last good checkpoint, quoted in the message.
  """
  bad = [k for k, v in metrics.items() if not math.isfinite(float(v))]
  if bad:
    kept = ("no checkpoint was written yet" if last_checkpoint is None
            else f"the last good checkpoint (step {last_checkpoint}) is intact")
    raise NonFiniteError(f"non-finite metric at step {step}: "
                         + ", ".join(f"{k}={metrics[k]}" for k in bad)
                         + f"; training stopped and {kept}.")


class CompileCount:
  """Result of :func:`count_compiles`; ``.count`` is read after the block."""

  def __init__(self) -> None:
    self.count = 0


@contextlib.contextmanager
def count_compiles(fun_name: str) -> Iterator[CompileCount]:
  """Counts XLA compilations of functions named ``fun_name`` inside the block.

  Uses JAX's public monitoring events, so it works for any ``jax.jit``
  function without touching its internals::

    with count_compiles("train_step") as c:
      for _ in range(10):
        state, m = train_step(state, batch, rng)
    assert c.count == 1
  """
  counter = CompileCount()
  target = f"jit({fun_name})"

  def listener(event: str, duration: float, **kwargs) -> None:
    if event == "/jax/core/compile/backend_compile_duration" and kwargs.get("fun_name") == target:
      counter.count += 1

  jax.monitoring.register_event_duration_secs_listener(listener)
  try:
    yield counter
  finally:
    jax.monitoring.unregister_event_duration_listener(listener)
