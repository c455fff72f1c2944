"""Segmentation losses shared by the methods: soft Dice (batch Dice, background excluded) and Dice + CE."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def soft_dice_loss(logits: jax.Array, labels: jax.Array, num_classes: int, eps: float = 1e-5) -> jax.Array:
  """``1 - mean_c Dice_c`` over the foreground classes, batch Dice of the softmax: scalar."""
  prob = jax.nn.softmax(logits.astype(jnp.float32), -1)[..., 1:]
  onehot = jax.nn.one_hot(labels, num_classes)[..., 1:]
  axes = tuple(range(prob.ndim - 1))
  inter = jnp.sum(prob * onehot, axes)
  total = jnp.sum(prob, axes) + jnp.sum(onehot, axes)
  return 1.0 - jnp.mean((2 * inter + eps) / (total + eps))


def dice_ce_loss(logits: jax.Array, labels: jax.Array, num_classes: int = 2) -> tuple[jax.Array, dict]:
  """Cross-entropy + soft Dice of ``logits [B, *S, K]`` against integer ``labels [B, *S]``."""
  ce = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), labels).mean()
  dice = soft_dice_loss(logits, labels, num_classes)
  return ce + dice, {"ce": ce, "dice_loss": dice}
