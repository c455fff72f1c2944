"""The SVR imaging model, its loss, the per-group optimiser and the fitting loop.

Imaging model for pixel ``p`` of slice ``s`` (NeSVoR / MetaSVR):

  ``y_p ~ c_s * B_stack(x_p) * mean_k V(T_s(x_p + U_s o_k))``

with ``V`` the volume INR, ``T_s`` the slice's rigid motion, ``o_k`` PSF
offsets in the slice frame ``U_s``, ``c_s = exp(log_scale_s)`` a per-slice
intensity scale and ``B`` an optional smooth per-stack bias field
(``exp`` of a quadratic polynomial). The loss per pixel is

  ``rho(y_hat - y) / sigma^2 + 0.5 * log sigma^2``,  ``sigma^2 = sigma_s^2 (* sigma_p^2)``

with ``rho`` the L2 or L1 data term, a learned per-slice variance
``sigma_s`` (and optionally a per-pixel one), plus ``drift_weight`` times the
motion drift penalty (and optionally ``smooth_weight`` times a temporal
smoothness penalty). Large learned ``sigma_s / c_s`` flag outlier slices. With
``outlier_drift_power = p > 0`` (not in MetaSVR) each slice's drift penalty is
weighted by ``clip((r_s / median r)^p, 1, 1000)``, ``r_s = sigma_s / c_s``
(held constant in the gradient): an outlier slice's content does not pin its
pose, and under the plain penalty the fit moves it to wherever its artefact
fits best (Adam normalises the step, so its low data weight does not slow
it); the weight pulls such a slice back towards the stack geometry. With
``zero_mean_motion`` (not in MetaSVR) the motion's mean over all slices is
subtracted, which fixes the reconstruction's frame to the mean slice pose.

Parameters are one pytree ``{"volume", "motion", "slice": {"log_scale",
"log_sigma"}, "pixel": {"log_sigma"}, "bias": {"coef"}}``; each top-level
group gets its own learning rate via ``optax.multi_transform`` (a rate of 0
freezes the group, e.g. the motion for the no-correction baseline).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxmed import core
from jaxmed.svr.motion import drift_penalty, smoothness_penalty
from jaxmed.svr.psf import psf_offsets, psf_ramp
from jaxmed.svr.slices import normalise, pixel_counts, pixel_points

GROUPS = ("volume", "motion", "slice", "pixel", "bias")


@dataclasses.dataclass(frozen=True)
class SVRModel:
  """Static description of the imaging model; parameters live in a separate pytree."""
  volume: nn.Module
  motion: nn.Module | None = None       # None: no motion correction (the stacks' geometry is trusted)
  data_term: str = "l2"                 # "l2" or "l1"
  pixel_variance: bool = False
  bias_field: bool = False
  drift_weight: float = 1.0
  smooth_weight: float = 0.0            # the optional temporal smoothness prior (motion.smoothness_penalty)
  zero_mean_motion: bool = False        # fix the frame: subtract the mean motion over all slices
  outlier_drift_power: float = 0.0      # > 0: outlier-weighted drift penalty (outlier_drift_weights)

  def init(self, key: jax.Array, sl: dict[str, Any]) -> dict[str, Any]:
    kv, km = jax.random.split(key)
    s, p = len(sl["stack"]), len(sl["values"])
    params = {"volume": self.volume.init(kv, jnp.zeros((1, 3))),
              "slice": {"log_scale": jnp.zeros(s), "log_sigma": jnp.zeros(s)}}
    if self.motion is not None:
      params["motion"] = self.motion.init(km, jnp.asarray(sl["stack"]), jnp.asarray(sl["pos"]))
    if self.pixel_variance:
      params["pixel"] = {"log_sigma": jnp.zeros(p)}
    if self.bias_field:
      params["bias"] = {"coef": jnp.zeros((int(sl["num_stacks"]), 9))}
    return params

  def slice_motion(self, params: dict[str, Any], sl: dict[str, Any]) -> jnp.ndarray:
    """``[S, 6]`` motion (rad, mm) of every slice."""
    if self.motion is None:
      return jnp.zeros((len(sl["stack"]), 6))
    motion = self.motion.apply(params["motion"], sl["stack"], sl["pos"])
    if self.zero_mean_motion:
      # SVR recovers motion only up to one rigid transform of the whole reconstruction; the drift
      # penalty barely pins it (a 1 deg global rotation adds ~1e-4 to mean(rot^2)). This fixes the frame
      # to the mean pose of all slices (first order in the angles), the simulator's reference frame.
      motion = motion - jnp.mean(motion, axis=0, keepdims=True)
    return motion

  def volume_at(self, params: dict[str, Any], points: jnp.ndarray, bbox: jnp.ndarray,
                progress: jnp.ndarray | float = 1.0) -> jnp.ndarray:
    """Volume intensity at world points ``[N, 3]`` -> ``[N]`` (``progress``: the hash grid's level schedule)."""
    return self.volume.apply(params["volume"], normalise(points, bbox), progress)

  def predict(self, params, sl, idx, offsets, progress=1.0):
    """Predicted pixel values ``[B]`` and the slice motion ``[S, 6]``."""
    motion = self.slice_motion(params, sl)
    pts = pixel_points(sl, idx, offsets, motion)
    v = self.volume_at(params, pts.reshape(-1, 3), sl["bbox"], progress).reshape(pts.shape[:2]).mean(-1)
    s = sl["slice"][idx]
    v = v * jnp.exp(params["slice"]["log_scale"][s])
    if self.bias_field:
      v = v * jnp.exp(jnp.sum(params["bias"]["coef"][sl["stack"][s]] * _quadratic(
          normalise(pts.mean(1), sl["bbox"])), -1))
    return v, motion

  def loss(self, params, sl, idx, offsets, progress=1.0):
    pred, motion = self.predict(params, sl, idx, offsets, progress)
    r = pred - sl["values"][idx]
    rho = r * r if self.data_term == "l2" else jnp.abs(r)
    log_var = 2.0 * params["slice"]["log_sigma"][sl["slice"][idx]]
    if self.pixel_variance:
      log_var = log_var + 2.0 * params["pixel"]["log_sigma"][idx]
    nll = jnp.mean(rho * jnp.exp(-log_var) + 0.5 * log_var)
    weights = outlier_drift_weights(params, sl, self.outlier_drift_power) if self.outlier_drift_power else None
    drift = drift_penalty(motion, weights)
    loss = nll + self.drift_weight * drift
    if self.smooth_weight:
      loss = loss + self.smooth_weight * smoothness_penalty(motion, sl["stack"])
    return loss, {"nll": nll, "mse": jnp.mean(r * r), "drift": drift}


def outlier_drift_weights(params: dict[str, Any], sl: dict[str, Any], power: float,
                          max_weight: float = 1000.0) -> jnp.ndarray:
  """Per-slice drift weights ``[S]``: ``clip((r_s / median r)^power, 1, max_weight)``, ``r_s = sigma_s / c_s``.

  ``r_s`` is slice ``s``'s learned noise on the volume's intensity scale (the outlier score,
  :func:`~jaxmed.svr.metrics.slice_sigma_in_volume_units`); the median runs over slices with pixels
  (``sl["has_pixels"]`` from :func:`device_slices`; the others learn nothing). No gradient flows through the
  weights. Before the slice group starts learning all scores are equal and every weight is 1 (the plain
  penalty).
  """
  score = jax.lax.stop_gradient(params["slice"]["log_sigma"] - params["slice"]["log_scale"])
  median = jnp.nanmedian(jnp.where(sl["has_pixels"], score, jnp.nan))
  return jnp.clip(jnp.exp(power * (score - median)), 1.0, max_weight)


def _quadratic(u: jnp.ndarray) -> jnp.ndarray:
  """Quadratic monomials of ``u [N, 3]`` without the constant: ``[N, 9]``."""
  x, y, z = u[:, 0], u[:, 1], u[:, 2]
  return jnp.stack([x, y, z, x * x, y * y, z * z, x * y, y * z, x * z], -1)


def make_optimizer(lrs: dict[str, float], *, steps: int = 0, starts: dict[str, float] | None = None,
                   final_fraction: float = 0.1) -> optax.GradientTransformation:
  """Adam per parameter group (``GROUPS``); a learning rate of 0 (or a missing group) freezes it.

  With ``steps``, each group's rate follows a cosine decay to ``final_fraction`` of it by the last step, and
  ``starts[group]`` (a fraction of ``steps``) holds the group at 0 until then: e.g. the motion waits until the
  volume has its coarse shape, as SVR alternates reconstruction and registration.
  """
  unknown = set(lrs) - set(GROUPS)
  if unknown:
    raise ValueError(f"learning rates for unknown parameter groups {sorted(unknown)}; expected {GROUPS}")
  starts = starts or {}

  def rate(group):
    lr = lrs[group]
    if not steps:
      return lr
    start = int(starts.get(group, 0.0) * steps)
    decay = optax.cosine_decay_schedule(lr, max(steps - start, 1), alpha=final_fraction)
    return optax.join_schedules([optax.constant_schedule(0.0), decay], [start]) if start else decay

  transforms = {g: optax.adam(rate(g)) if lrs.get(g, 0.0) > 0 else optax.set_to_zero() for g in GROUPS}
  return optax.multi_transform(transforms, lambda params: {k: k for k in params})


def device_slices(sl: dict[str, Any]) -> dict[str, Any]:
  """A :func:`~jaxmed.svr.slices.prepare` slice set with its arrays on the device (``num_stacks`` stays int).

  Adds ``has_pixels [S]`` (slices with at least one real pixel), fixed for a subject, so the loss does not
  recount it every step.
  """
  out = {k: (int(v) if k == "num_stacks" else jnp.asarray(v)) for k, v in sl.items()}
  out.setdefault("num_pixels", jnp.int32(len(sl["values"])))
  out.setdefault("has_pixels", jnp.asarray(pixel_counts(sl) > 0))
  return out


def fit(model: SVRModel, sl: dict[str, Any], *, steps: int, lrs: dict[str, float], key: jax.Array,
        params: dict[str, Any] | None = None, samples_per_step: int = 8192, psf_max: int = 16,
        psf_schedule: str = "linear", starts: dict[str, float] | None = None, final_fraction: float = 0.1,
        level_steps: int = 0, horizon: int | None = None,
        eval_fn: Callable[[dict[str, Any]], dict[str, float]] | None = None,
        eval_every: int = 0, progress: str | None = "svr") -> tuple[dict[str, Any], list[dict[str, float]]]:
  """Fits the imaging model to one subject's slices.

  Args:
    params: a starting point (e.g. a Reptile meta-initialisation); fresh groups are filled from ``model.init``.
    samples_per_step: volume evaluations per step; ``samples_per_step // k`` pixels with ``k`` PSF samples
      each, ``k`` ramping up to ``psf_max`` as :func:`~jaxmed.svr.psf.psf_ramp` says.
    starts: per-group start as a fraction of ``horizon`` (see :func:`make_optimizer`).
    final_fraction: each group's learning rate at the last step, as a fraction of its initial rate.
    level_steps: absolute number of steps over which a hash grid's levels open (:func:`level_progress`; 0: all
      open from the start). Absolute, not a fraction of ``steps``: a short Reptile inner fit and a long test fit
      open the levels at the same steps.
    horizon: the length every other schedule is defined over (learning-rate decay, group starts, PSF ramp);
      default ``steps``. ``fit(steps=n, horizon=N)`` runs exactly the first ``n`` steps of ``fit(steps=N)``
      (same key): a Reptile inner fit is the start of a test fit, not a compressed copy of it.
    eval_fn: ``params -> metrics``, called at step 0, every ``eval_every`` steps and at the end.

  Returns:
    The fitted params and the history (one dict per evaluation, with ``step``, ``time_s`` (training wall time
    so far; evaluations and the first step at each PSF sample count, which may compile, are not timed) and the
    last losses).
  """
  horizon = steps if horizon is None else int(horizon)
  if horizon < steps:
    raise ValueError(f"fit: horizon {horizon} is shorter than the {steps} steps to run")
  sl_d = device_slices(sl)
  key, k_init = jax.random.split(key)
  fresh = model.init(k_init, sl)
  params = fresh if params is None else {g: params.get(g, fresh[g]) for g in fresh}
  opt_key = (tuple(sorted(lrs.items())), horizon, tuple(sorted((starts or {}).items())), final_fraction)
  try:
    tx, step = _compiled_step(model, opt_key, samples_per_step)
  except TypeError:  # an unhashable model (e.g. a voxel grid holding an array): compile for this call only
    tx, step = _compiled_step.__wrapped__(model, opt_key, samples_per_step)
  opt_state = tx.init(params)

  history = []
  if eval_fn is not None:
    history.append({"step": 0, "time_s": 0.0, **eval_fn(params)})
  bar = core.progress_bar(steps, desc=progress) if progress else None
  metrics = {}
  train_s, t0, compiled = 0.0, time.perf_counter(), set()
  for i in range(steps):
    key, sub = jax.random.split(key)
    k = psf_ramp(i, horizon, psf_max, psf_schedule)
    if k not in compiled:  # a step that may compile (a new PSF sample count) is not timed
      jax.block_until_ready(params)
      train_s += time.perf_counter() - t0
    params, opt_state, metrics = step(params, opt_state, sl_d, sub, jnp.float32(level_progress(i, level_steps)), k=k)
    if k not in compiled:
      compiled.add(k)
      jax.block_until_ready(params)
      t0 = time.perf_counter()
    if bar is not None:
      core.update_progress(bar, 1, core.to_host(metrics) if (i + 1) % 50 == 0 else None)
    if eval_fn is not None and eval_every and ((i + 1) % eval_every == 0 or i + 1 == steps):
      jax.block_until_ready(params)
      train_s += time.perf_counter() - t0
      history.append({"step": i + 1, "time_s": train_s, **core.to_host(metrics), **eval_fn(params)})
      t0 = time.perf_counter()
  if bar is not None:
    bar.close()
  return params, history


def level_progress(step: int, level_steps: int) -> float:
  """The hash grid's level schedule at ``step``: ``min(step / level_steps, 1)`` (1 when ``level_steps`` is 0).

  A function of the absolute step only, so every fit (Reptile inner fits, test fits of any length) opens the
  levels identically.
  """
  return min(step / level_steps, 1.0) if level_steps > 0 else 1.0


@functools.lru_cache(maxsize=16)
def _compiled_step(model: SVRModel, opt_key: tuple, samples_per_step: int):
  """The optimiser and the jitted step, cached so repeated fits (Reptile, several subjects) reuse compilations."""
  lrs, steps, starts, final_fraction = opt_key
  tx = make_optimizer(dict(lrs), steps=steps, starts=dict(starts), final_fraction=final_fraction)

  @functools.partial(jax.jit, static_argnames=("k",))
  def step(params, opt_state, sl, key, progress, k):
    k_idx, k_psf = jax.random.split(key)
    batch = max(samples_per_step // k, 1)
    idx = jax.random.randint(k_idx, (batch,), 0, sl["num_pixels"])
    offsets = psf_offsets(k_psf, (batch,), k, sl["sigmas"][sl["slice"][idx]])
    (loss, aux), grads = jax.value_and_grad(model.loss, has_aux=True)(params, sl, idx, offsets, progress)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, {"loss": loss, **aux}

  return tx, step


def sample_volume(model: SVRModel, params: dict[str, Any], points: np.ndarray, bbox: np.ndarray,
                  chunk: int = 65536) -> np.ndarray:
  """The fitted volume at world points ``[..., 3]`` -> ``[...]`` (chunked, no PSF)."""
  pts = np.asarray(points, np.float32).reshape(-1, 3)
  n = len(pts)
  chunk = min(chunk, n)
  pts = np.concatenate([pts, np.zeros((-n % chunk, 3), np.float32)])  # one chunk shape: one compilation
  try:
    hash(model)
    f = functools.partial(_volume_chunk, model)
  except TypeError:
    f = functools.partial(_volume_chunk.__wrapped__, model)
  out = [np.asarray(f(params, pts[i:i + chunk], jnp.asarray(bbox))) for i in range(0, len(pts), chunk)]
  return np.concatenate(out)[:n].reshape(np.shape(points)[:-1])


@functools.partial(jax.jit, static_argnums=0)
def _volume_chunk(model: SVRModel, params: dict[str, Any], x: jnp.ndarray, bbox: jnp.ndarray) -> jnp.ndarray:
  return model.volume_at(params, x, bbox)
