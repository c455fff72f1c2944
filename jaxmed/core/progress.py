"""A console progress bar with the step rate and the latest loss."""

from __future__ import annotations

from typing import Mapping

from tqdm.auto import tqdm


def progress_bar(total: int, *, initial: int = 0, desc: str = "train") -> tqdm:
  """A tqdm bar over training steps; ``initial`` is the resumed step."""
  return tqdm(total=total, initial=initial, desc=desc, unit="step", dynamic_ncols=True,
              mininterval=0.5, smoothing=0.1)


def update_progress(bar: tqdm, steps: int, metrics: Mapping[str, float] | None = None) -> None:
  """Advances ``bar`` by ``steps`` and shows ``loss`` (and other given scalars)."""
  if metrics:
    bar.set_postfix({k: f"{v:.4g}" for k, v in metrics.items()}, refresh=False)
  bar.update(steps)
