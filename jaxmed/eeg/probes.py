"""Evaluation protocols on frozen features: a linear probe (scikit-learn) and a small MLP head (Flax).

The third protocol, full fine-tuning, trains the encoder with a linear head
end to end (``experiments/eeg_fm``), with the same loss as the MLP head
(:func:`jaxmed.eeg.tasks.task_loss`).

``linear_probe`` is :mod:`jaxmed.core.probes` per task: standardised
L2-regularised logistic regression (balanced class weights) or ridge
regression with the penalty chosen by leave-one-out (``RidgeCV``), i.e. the
usual linear-probe protocol of foundation-model papers.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import numpy as np

from jaxmed.core.probes import logistic_probe, ridge_probe
from jaxmed.eeg.tasks import TASKS


def linear_probe(task: str, f_train: np.ndarray, y_train: np.ndarray, f_test: np.ndarray, *,
                 c: float = 1.0) -> np.ndarray:
  """Test scores: age in years (regression) or class probabilities ``[N, K]`` (all K classes as columns)."""
  if TASKS[task]["kind"] == "regression":
    return ridge_probe(f_train, y_train, f_test)
  return logistic_probe(f_train, y_train, f_test, num_classes=TASKS[task]["outputs"], c=c, balanced=True)


class MLPHead(nn.Module):
  """``[B, F] -> [B, K]``: LayerNorm, Dense(hidden), GELU, dropout, Dense(K)."""
  outputs: int
  hidden: int = 128
  dropout: float = 0.1

  @nn.compact
  def __call__(self, f: jax.Array, train: bool = False) -> jax.Array:
    h = nn.gelu(nn.Dense(self.hidden)(nn.LayerNorm()(f)))
    return nn.Dense(self.outputs)(nn.Dropout(self.dropout, deterministic=not train)(h))
