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

from jaxmed.io.torch_checkpoint import tensor_getter


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
  padding: str = "same"                  # "same" (Keras, the paper's code) or "symmetric" (k // 2 each side, braindecode)
  dense_max_norm: float | None = 0.25    # the paper's max-norm on the classifier; braindecode's conv classifier: None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    b, c, t = x.shape
    bn = lambda: nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum, epsilon=1e-3)  # noqa: E731
    if self.padding not in ("same", "symmetric"):
      raise ValueError(f"EEGNet: padding must be 'same' or 'symmetric'; got {self.padding!r}")
    pad = (lambda k: "SAME") if self.padding == "same" else (lambda k: [(0, 0), (k // 2, k // 2)])  # noqa: E731
    h = x[..., None]
    h = bn()(nn.Conv(self.f1, (1, self.kernel_length), padding=pad(self.kernel_length), use_bias=False,
                     name="temporal")(h))
    spatial = self.param("spatial", nn.initializers.lecun_normal(), (c, 1, 1, self.f1 * self.depth_multiplier))
    spatial = max_norm(spatial, 1.0, (0, 1, 2))
    # the depthwise spatial conv (kernel [C, 1], groups f1, output channel g * D + d reads input channel g) as
    # one contraction: XLA's CPU backward of the grouped conv ran 0.46 s per batch of 16, the einsum's is ms
    d = self.depth_multiplier
    h = jnp.einsum("bctg,cgd->btgd", h, spatial.reshape(c, self.f1, d)).reshape(b, 1, h.shape[2], self.f1 * d)
    h = nn.Dropout(self.dropout, deterministic=not train)(nn.avg_pool(nn.elu(bn()(h)), (1, 4), (1, 4)))
    f = self.f1 * self.depth_multiplier
    h = nn.Conv(f, (1, 16), padding=pad(16), feature_group_count=f, use_bias=False, name="separable_depthwise")(h)
    h = nn.Conv(self.f2, (1, 1), use_bias=False, name="separable_pointwise")(h)
    h = nn.Dropout(self.dropout, deterministic=not train)(nn.avg_pool(nn.elu(bn()(h)), (1, 8), (1, 8)))
    h = h.reshape(b, -1)
    w = self.param("dense_kernel", nn.initializers.lecun_normal(), (h.shape[-1], self.num_outputs))
    if self.dense_max_norm is not None:
      w = max_norm(w, self.dense_max_norm, (0,))
    return h @ w + self.param("dense_bias", nn.initializers.zeros, (self.num_outputs,))


def precise_batch_stats(model: EEGNet, variables: dict, x: np.ndarray, batch_size: int = 64) -> dict:
  """``variables`` with ``batch_stats`` replaced by the mean of per-batch statistics over ``x [N, C, T]``."""
  probe = model.clone(bn_momentum=0.0, dropout=0.0)     # inference-time activations: no dropout
  apply = jax.jit(lambda v, xb: probe.apply(v, xb, train=True, mutable=["batch_stats"])[1]["batch_stats"])
  stats = [apply(variables, x[i:i + batch_size]) for i in range(0, len(x) - batch_size + 1, batch_size)] or \
      [apply(variables, x)]
  mean = jax.tree_util.tree_map(lambda *a: jnp.mean(jnp.stack(a), 0), *stats)
  return {**variables, "batch_stats": mean}


def params_from_braindecode_eegnet(state, path: str = "") -> dict:
  """braindecode ``EEGNet`` state dict (arrays; the default conv classifier) -> :class:`EEGNet` variables for
  ``EEGNet(..., padding="symmetric", dense_max_norm=None)``. The spatial kernel keeps braindecode's stored
  (unconstrained) weight; both sides apply the max-norm in the forward pass. ``num_batches_tracked`` is dropped."""
  get = tensor_getter(state, path, "braindecode EEGNet")

  spatial = get("conv_spatial.parametrizations.weight.original") if \
      "conv_spatial.parametrizations.weight.original" in state else get("conv_spatial.weight")
  w_out = get("final_layer.conv_classifier.weight")                     # [K, F2, 1, T']
  bn_names = ("bnorm_temporal", "bnorm_1", "bnorm_2")
  params = {"temporal": {"kernel": get("conv_temporal.weight").transpose(2, 3, 1, 0)},
            "spatial": spatial.transpose(2, 3, 1, 0),
            "separable_depthwise": {"kernel": get("conv_separable_depth.weight").transpose(2, 3, 1, 0)},
            "separable_pointwise": {"kernel": get("conv_separable_point.weight").transpose(2, 3, 1, 0)},
            "dense_kernel": w_out[:, :, 0, :].transpose(2, 1, 0).reshape(-1, w_out.shape[0]),
            "dense_bias": get("final_layer.conv_classifier.bias")}
  stats = {}
  for i, name in enumerate(bn_names):
    params[f"BatchNorm_{i}"] = {"scale": get(f"{name}.weight"), "bias": get(f"{name}.bias")}
    stats[f"BatchNorm_{i}"] = {"mean": get(f"{name}.running_mean"), "var": get(f"{name}.running_var")}
  return {"params": params, "batch_stats": stats}
