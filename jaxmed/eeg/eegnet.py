"""EEGNet-8,2 (Lawhern et al., 2018), the compact convolutional EEG baseline, trained from scratch.

``x [B, C, T]`` as a one-feature image ``[B, C, T, 1]``:

1. temporal conv, F1 = 8 filters of length ``sfreq / 2`` (64 at 128 Hz), no bias; BatchNorm;
2. depthwise spatial conv over all C electrodes, D = 2 per temporal filter,
   kernel max-norm 1; BatchNorm; ELU; average pool (1, 4); dropout;
3. separable conv: depthwise (1, 16) then pointwise to F2 = 16; BatchNorm;
   ELU; average pool (1, 8); dropout;
4. flatten, dense to the outputs with max-norm 0.25.

The max-norm constraints are applied in the forward pass (the kernel is
rescaled to the bound whenever it exceeds it, as braindecode's constrained
layers do), so they hold for the weights actually used. BatchNorm uses batch
statistics in training; :func:`precise_batch_stats` then sets population
statistics from the training windows for inference (one pass without dropout,
averaged over batches), which is what running averages approximate.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


def max_norm(w: jax.Array, bound: float, axes: tuple[int, ...]) -> jax.Array:
  """``w`` rescaled so the L2 norm over ``axes`` is at most ``bound`` (one norm per remaining index)."""
  norm = jnp.sqrt((w ** 2).sum(axes, keepdims=True))
  return w * jnp.minimum(1.0, bound / (norm + 1e-7))


class EEGNet(nn.Module):
  """``x [B, C, T] -> logits [B, num_outputs]``; ``train`` switches dropout and batch statistics."""
  num_outputs: int
  kernel_length: int = 50
  f1: int = 8
  depth_multiplier: int = 2
  f2: int = 16
  dropout: float = 0.25
  bn_momentum: float = 0.99

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    b, c, t = x.shape
    bn = lambda: nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum, epsilon=1e-3)  # noqa: E731
    h = x[..., None]
    h = bn()(nn.Conv(self.f1, (1, self.kernel_length), padding="SAME", use_bias=False, name="temporal")(h))
    spatial = self.param("spatial", nn.initializers.lecun_normal(), (c, 1, 1, self.f1 * self.depth_multiplier))
    spatial = max_norm(spatial, 1.0, (0, 1, 2))
    h = jax.lax.conv_general_dilated(h, spatial, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                     feature_group_count=self.f1)
    h = nn.Dropout(self.dropout, deterministic=not train)(nn.avg_pool(nn.elu(bn()(h)), (1, 4), (1, 4)))
    f = self.f1 * self.depth_multiplier
    h = nn.Conv(f, (1, 16), padding="SAME", feature_group_count=f, use_bias=False, name="separable_depthwise")(h)
    h = nn.Conv(self.f2, (1, 1), use_bias=False, name="separable_pointwise")(h)
    h = nn.Dropout(self.dropout, deterministic=not train)(nn.avg_pool(nn.elu(bn()(h)), (1, 8), (1, 8)))
    h = h.reshape(b, -1)
    w = max_norm(self.param("dense_kernel", nn.initializers.lecun_normal(), (h.shape[-1], self.num_outputs)), 0.25,
                 (0,))
    return h @ w + self.param("dense_bias", nn.initializers.zeros, (self.num_outputs,))


def precise_batch_stats(model: EEGNet, variables: dict, x: np.ndarray, batch_size: int = 64) -> dict:
  """``variables`` with ``batch_stats`` replaced by the mean of per-batch statistics over ``x [N, C, T]``."""
  probe = model.clone(bn_momentum=0.0, dropout=0.0)     # inference-time activations: no dropout
  apply = jax.jit(lambda v, xb: probe.apply(v, xb, train=True, mutable=["batch_stats"])[1]["batch_stats"])
  stats = [apply(variables, x[i:i + batch_size]) for i in range(0, len(x) - batch_size + 1, batch_size)] or \
      [apply(variables, x)]
  mean = jax.tree_util.tree_map(lambda *a: jnp.mean(jnp.stack(a), 0), *stats)
  return {**variables, "batch_stats": mean}
