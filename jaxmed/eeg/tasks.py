"""The three EEG tasks, their losses, metrics and chance levels.

- ``age``: regression of the subject's age (years) from a window; the
  model predicts the z-scored age. Metrics: MAE (years) and Pearson r.
- ``seizure``: binary seizure / no seizure per window. Metrics: balanced
  accuracy (threshold 0.5 on the probability), AUROC, AUPRC.
- ``events``: six TUEV classes per event-centred 5 s window. Metrics:
  balanced accuracy, Cohen's kappa, weighted F1.

Classification losses weight classes by inverse training frequency
(balanced), as the seizure and event classes are imbalanced.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from sklearn import metrics as skm

TASKS = {"age": {"kind": "regression", "outputs": 1, "metrics": ("mae", "pearson_r")},
         "seizure": {"kind": "binary", "outputs": 2, "metrics": ("balanced_accuracy", "auroc", "auprc")},
         "events": {"kind": "multiclass", "outputs": 6, "metrics": ("balanced_accuracy", "kappa", "weighted_f1")}}


def class_weights(y: np.ndarray, num_classes: int) -> np.ndarray:
  """Balanced weights ``N / (K n_k)`` (classes absent from ``y`` get weight 0)."""
  counts = np.bincount(y, minlength=num_classes).astype(np.float64)
  return np.where(counts > 0, len(y) / (num_classes * np.maximum(counts, 1)), 0.0).astype(np.float32)


def task_loss(task: str, outputs: jax.Array, y: jax.Array, weights: jax.Array | None = None) -> jax.Array:
  """MSE on z-scored targets (regression) or class-weighted cross-entropy (``outputs`` logits ``[B, K]``)."""
  if TASKS[task]["kind"] == "regression":
    return ((outputs[:, 0] - y) ** 2).mean()
  logp = jax.nn.log_softmax(outputs.astype(jnp.float32), -1)
  nll = -jnp.take_along_axis(logp, y[:, None].astype(jnp.int32), -1)[:, 0]
  w = jnp.ones_like(nll) if weights is None else weights[y]
  return (w * nll).sum() / jnp.maximum(w.sum(), 1e-8)


def scores_from_outputs(task: str, outputs: np.ndarray, target_mean: float = 0.0, target_std: float = 1.0):
  """Age in years (regression) or class probabilities ``[N, K]``."""
  outputs = np.asarray(outputs, np.float64)
  if TASKS[task]["kind"] == "regression":
    return outputs[:, 0] * target_std + target_mean
  e = np.exp(outputs - outputs.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


def _binary(fn):
  """A score-based binary metric, NaN when the labels hold one class only."""
  return lambda y, s: float(fn(y, s[:, 1])) if len(np.unique(y)) == 2 else float("nan")


METRICS = {
    "mae": lambda y, s: float(np.abs(y - s).mean()),
    "pearson_r": lambda y, s: float(np.corrcoef(y, s)[0, 1]) if np.std(s) > 0 else 0.0,
    "balanced_accuracy": lambda y, s: float(skm.balanced_accuracy_score(y, s.argmax(-1))),
    "auroc": _binary(skm.roc_auc_score),
    "auprc": _binary(skm.average_precision_score),
    "kappa": lambda y, s: float(skm.cohen_kappa_score(y, s.argmax(-1))),
    "weighted_f1": lambda y, s: float(skm.f1_score(y, s.argmax(-1), average="weighted")),
}


def task_metric(task: str, name: str, y: np.ndarray, scores: np.ndarray) -> float:
  """One of the task's metrics (bootstrap loops need only the headline, not all of them)."""
  if name not in TASKS[task]["metrics"]:
    raise ValueError(f"task_metric: {task!r} has metrics {TASKS[task]['metrics']}; got {name!r}")
  return METRICS[name](np.asarray(y), np.asarray(scores))


def task_metrics(task: str, y: np.ndarray, scores: np.ndarray) -> dict[str, float]:
  """The task's metrics (module docstring) from targets and :func:`scores_from_outputs`."""
  return {name: task_metric(task, name, y, scores) for name in TASKS[task]["metrics"]}


def chance_metrics(task: str, y_train: np.ndarray, y_test: np.ndarray) -> dict[str, float]:
  """What a predictor without the input scores: the training mean age, or constant class probabilities."""
  if TASKS[task]["kind"] == "regression":
    return {"mae": float(np.abs(y_test - y_train.mean()).mean()), "pearson_r": 0.0}
  k = TASKS[task]["outputs"]
  prior = np.bincount(y_train, minlength=k) / len(y_train)
  out = {"balanced_accuracy": 1.0 / k}
  if k == 2:
    out.update(auroc=0.5, auprc=float(np.mean(y_test == 1)))
  else:
    out.update(kappa=0.0, weighted_f1=float(skm.f1_score(y_test, np.full(len(y_test), prior.argmax()),
                                                         average="weighted")))
  return out


def beats_chance(task: str, metrics: dict[str, float], chance: dict[str, float]) -> bool:
  """The headline metric is better than chance: lower MAE, higher balanced accuracy."""
  if TASKS[task]["kind"] == "regression":
    return metrics["mae"] < chance["mae"]
  return metrics["balanced_accuracy"] > chance["balanced_accuracy"]
