"""Rib segmentation: CT normalisation, foreground-oversampled patches, Dice + CE, sliding-window inference.

The network is :class:`jaxmed.nn.UNet3D` (nnU-Net-like). Training draws
fixed-size patches, a third of them centred on a rib voxel (nnU-Net's
foreground oversampling), and minimises cross-entropy plus the soft Dice
loss of the rib class (batch Dice, background excluded), with optional deep
supervision. Inference averages softmax probabilities over overlapping
patches with Gaussian weights and thresholds the rib probability at 0.5,
giving a binary mask at the CT's resolution.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxmed.nn import dice_ce_loss, sliding_window_inference, soft_dice_loss  # noqa: F401  (re-exported)

HU_WINDOW = (-1000.0, 1500.0)


def normalise_ct(hu: np.ndarray) -> np.ndarray:
  """HU clipped to ``HU_WINDOW`` and scaled to about [-2, 3] (``(hu - 0) / 500``): ``[..., 1]`` float32."""
  return (np.clip(np.asarray(hu, np.float32), *HU_WINDOW) / 500.0)[..., None]


class PatchSource:
  """Random-access patches: item ``i`` is ``{"image": [*patch, 1], "label": [*patch]}``, seeded by ``(seed, i)``.

  ``images``/``labels``: lists of ``[D, H, W]`` CTs (HU) and binary rib masks.
  ``foreground_fraction`` of the items are centred on a random rib voxel;
  the rest anywhere. Volumes smaller than a patch are edge-padded.
  """

  def __init__(self, images: Sequence[np.ndarray], labels: Sequence[np.ndarray], patch: Sequence[int], *,
               length: int, seed: int = 0, foreground_fraction: float = 1 / 3):
    self.patch = tuple(int(p) for p in patch)
    self.images, self.labels = [], []
    for im, lab in zip(images, labels):
      pad = [(0, max(0, p - s)) for p, s in zip(self.patch, im.shape)]
      self.images.append(np.pad(normalise_ct(im), pad + [(0, 0)], mode="edge"))
      self.labels.append(np.pad(np.asarray(lab, np.int32), pad))
    self.fg = [np.argwhere(lab > 0) for lab in self.labels]
    self.length, self.seed, self.fg_fraction = int(length), int(seed), float(foreground_fraction)

  def __len__(self) -> int:
    return self.length

  def __getitem__(self, i: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng((self.seed, int(i)))
    k = int(rng.integers(len(self.images)))
    shape, p = np.asarray(self.labels[k].shape), np.asarray(self.patch)
    if rng.uniform() < self.fg_fraction and len(self.fg[k]):
      centre = self.fg[k][rng.integers(len(self.fg[k]))]
      lo = np.clip(centre - p // 2, 0, shape - p)
    else:
      lo = np.array([rng.integers(0, s - q + 1) for s, q in zip(shape, p)])
    sl = tuple(slice(a, a + q) for a, q in zip(lo, p))
    return {"image": self.images[k][sl], "label": self.labels[k][sl]}


def deep_supervision_loss(outputs, labels: jax.Array, num_classes: int = 2) -> tuple[jax.Array, dict]:
  """nnU-Net's weighted sum over resolutions: weights ``1/2^k`` (k = 0 full), normalised.

  ``outputs``: ``logits`` or ``(logits, aux)`` from :class:`jaxmed.nn.UNet3D`
  (``aux`` coarsest first); targets at level ``k`` take every ``2^k``-th voxel.
  """
  if not isinstance(outputs, tuple):
    return dice_ce_loss(outputs, labels, num_classes)
  logits, aux = outputs
  levels = [logits] + list(aux[::-1])
  weights = np.array([0.5 ** k for k in range(len(levels))])
  weights = weights / weights.sum()
  total, metrics = 0.0, {}
  for k, (w, out) in enumerate(zip(weights, levels)):
    f = 2 ** k
    loss, m = dice_ce_loss(out, labels[:, ::f, ::f, ::f], num_classes)
    total = total + w * loss
    if k == 0:
      metrics = m
  return total, metrics


def rib_probability(model, params, ct_hu: np.ndarray, patch: Sequence[int], *, overlap: float = 0.5,
                    batch_size: int = 4, progress: str | None = None) -> np.ndarray:
  """``[D, H, W]`` rib probability by Gaussian-weighted sliding windows of ``model`` (softmax class 1)."""
  @jax.jit
  def predict(x):
    out = model.apply(params, x)
    logits = out[0] if isinstance(out, tuple) else out
    return jax.nn.softmax(logits.astype(jnp.float32), -1)

  prob = sliding_window_inference(predict, normalise_ct(ct_hu), tuple(patch), overlap=overlap,
                                  batch_size=batch_size, progress=progress)
  return prob[..., 1]


def dice_score(pred: np.ndarray, target: np.ndarray) -> float:
  """Hard Dice of two binary masks (1.0 when both are empty)."""
  pred, target = np.asarray(pred, bool), np.asarray(target, bool)
  total = pred.sum() + target.sum()
  return 1.0 if total == 0 else float(2 * (pred & target).sum() / total)
