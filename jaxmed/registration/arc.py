"""ARC: the alignment-regularity characteristic of a registration model (Sideri-Lampretsa et al. 2025).

A model trained for a range of regularisation weights ``lambda`` traces a
curve of alignment (Dice, HD95) against regularity (SDlogJ, % folding,
non-diffeomorphic volume), scored as Learn2Reg scores a submission.
:func:`arc_curve` evaluates the whole curve in one jitted call over
``lambda``; :func:`arc_auc` reduces it to one number over a regularity range
that the compared curves share; :func:`plot_arc` draws several models on one
figure.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxmed.registration import metrics as M
from jaxmed.registration.surface import hd95_l2r
from jaxmed.registration.warp import warp_labels
from jaxmed.core.stage import save_figure

RegisterFn = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]


def arc_points(register: RegisterFn, lambdas: jax.Array, moving: jax.Array, fixed: jax.Array,
               moving_labels: jax.Array, fixed_labels: jax.Array, *, labels: Sequence[int], num_labels: int,
               spacing: Sequence[float] | None = None, label_warp: str = "nearest",
               lambda_batch_size: int | None = None, pair_batch_size: int | None = None,
               fixed_mask: jax.Array | None = None, keypoints: tuple[jax.Array, jax.Array] | None = None
               ) -> dict[str, jax.Array]:
  """The device part of the ARC over ``K`` lambdas (jit it, or call it under jit).

  Args:
    register: ``(lam, moving, fixed) -> disp``; ``moving, fixed`` are
      ``[N, *S, 1]`` and ``disp`` is ``[N, *S, n]``. For a hypernetwork this
      is ``lambda lam, m, f: hm.apply(hp, lam, m, f)[0]``.
    lambdas: ``[K]`` values, or a scalar for one lambda (the outputs then lack the ``[K]`` axis).
    moving_labels, fixed_labels: ``[N, *S]`` integer maps.
    labels: the foreground labels to score; ``num_labels`` the class count.
    label_warp: ``"nearest"`` (Learn2Reg's order-0 warp of the label map) or
      ``"onehot"`` (linear warp of one-hot labels, then argmax).
    lambda_batch_size: ``None`` vmaps over all ``K`` lambdas at once. An
      integer ``k`` runs ``jax.lax.map`` over chunks of ``k`` vmapped lambdas,
      which bounds the memory (see :func:`lambda_batch_for_budget`).
    pair_batch_size: ``None`` registers all ``N`` pairs of a lambda at once;
      ``p`` runs ``jax.lax.map`` over chunks of ``p`` pairs (3D volumes at
      full size need it: each pair's Jacobians alone are ``~50 |S|`` bytes).
    fixed_mask: ``[N, *S]`` region for the masked SDlogJ (NLST: the lung
      mask); default the fixed foreground ``fixed_labels > 0``.
    keypoints: ``(fixed_kp, moving_kp)``, each ``[N, P, n]`` voxel coordinates
      (NaN rows pad); adds ``tre`` (:func:`~jaxmed.registration.keypoint_tre`).

  Returns:
    Per-pair values, each with leading ``[K, N]``: ``dice`` (mean over
    labels), ``dice_per_label`` ``[K, N, L]``, ``folding_percent``,
    ``ndv_percent`` (non-diffeomorphic volume), ``sdlogj_l2r``, ``sdlogj``
    (masked to the fixed foreground), and ``warped_labels`` ``[K, N, *S]``
    (uint8 when the labels fit) for the host-side HD95.
  """
  small = jnp.uint8 if num_labels <= 256 else moving_labels.dtype

  def pairs(lam, m, f, ml, fl, extra):
    disp = register(lam, m, f)
    warped = warp_labels(ml, disp, num_labels=num_labels, spacing=spacing, method=label_warp)
    per_label = M.dice_per_label(warped, fl, labels)
    jac = M.jacobian_determinant(disp, spacing)
    out = {"dice": jnp.nanmean(per_label, axis=1), "dice_per_label": per_label,
           "folding_percent": M.folding_percent(jac), "ndv_percent": M.ndv_percent(disp, spacing=spacing),
           "sdlogj_l2r": M.sdlogj_l2r(jac), "sdlogj": M.sdlogj_masked(jac, extra.get("mask", fl > 0)),
           "warped_labels": warped.astype(small)}
    if "fixed_kp" in extra:
      voxel_disp = disp if spacing is None else disp / jnp.asarray(spacing, disp.dtype)
      out["tre"] = M.keypoint_tre(voxel_disp, extra["fixed_kp"], extra["moving_kp"], spacing)
    return out

  extra = {} if fixed_mask is None else {"mask": fixed_mask}
  if keypoints is not None:
    extra.update(fixed_kp=keypoints[0], moving_kp=keypoints[1])

  def one(lam):
    data = (moving, fixed, moving_labels, fixed_labels, extra)
    if pair_batch_size is None:
      return pairs(lam, *data)
    single = lambda x: jax.tree.map(lambda v: v[0], pairs(lam, *jax.tree.map(lambda v: v[None], x)))  # noqa: E731
    return jax.lax.map(single, data, batch_size=pair_batch_size)

  lambdas = jnp.asarray(lambdas, jnp.float32)
  if lambdas.ndim == 0:  # one lambda: no leading [K] axis, no vmap
    return one(lambdas)
  if lambda_batch_size is None:
    return jax.vmap(one)(lambdas)
  return jax.lax.map(one, lambdas, batch_size=lambda_batch_size)


def lambda_batch_for_budget(points_fn: Callable[[jax.Array], dict], num_lambdas: int, budget_gb: float) -> int:
  """The largest lambda chunk whose compiled ARC evaluation fits ``budget_gb``.

  ``points_fn(lambdas)`` is :func:`arc_points` with everything but the
  lambdas bound and ``lambda_batch_size`` left to vmap them all. Compiles it
  for 1 and 2 lambdas (no compute), reads XLA's memory analysis and
  extrapolates linearly: ``peak(k) = base + k * per_lambda``. Returns a value
  in ``[1, num_lambdas]``.
  """
  peaks = []
  for k in (1, 2):
    compiled = jax.jit(points_fn).lower(jax.ShapeDtypeStruct((k,), jnp.float32)).compile()
    peaks.append(compiled_peak_bytes(compiled))
  per_lambda = max(peaks[1] - peaks[0], 1)
  base = peaks[0] - per_lambda
  fit = int((budget_gb * 2 ** 30 - base) // per_lambda)
  return int(np.clip(fit, 1, num_lambdas))


def compiled_peak_bytes(compiled) -> int:
  """Peak device bytes of a compiled function from XLA's memory analysis (arguments + outputs + temporaries)."""
  m = compiled.memory_analysis()
  return int(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes
             - getattr(m, "alias_size_in_bytes", 0))


def arc_curve(register: RegisterFn, lambdas: Sequence[float], moving, fixed, moving_labels, fixed_labels, *,
              labels: Sequence[int], num_labels: int, spacing: Sequence[float] | None = None,
              label_warp: str = "nearest", with_hd95: bool = True,
              lambda_batch_size: int | None = None, pair_batch_size: int | None = None,
              fixed_mask=None, keypoints=None) -> dict[str, np.ndarray]:
  """Evaluates a model at ``K`` lambdas on a validation set; returns ``[K]`` means over pairs.

  Keys: ``lambda``, ``dice``, ``hd95`` (if ``with_hd95``: Learn2Reg's, per
  label in voxels, ``nanmean`` over labels, then the mean over pairs),
  ``sdlogj_l2r``, ``sdlogj``, ``folding_percent``, ``ndv_percent``, ``tre``
  (with ``keypoints``; ``fixed_mask`` and ``keypoints`` as in
  :func:`arc_points`), and ``auc`` (:func:`arc_auc` of Dice against ``sdlogj_l2r`` over this curve's
  own range). The device work is one jitted call (see :func:`arc_points`);
  HD95 runs on the host, batched over all lambdas and pairs.
  """
  lambdas = np.asarray(lambdas, np.float32)
  pts = jax.jit(lambda lam: arc_points(register, lam, moving, fixed, moving_labels, fixed_labels, labels=labels,
                                       num_labels=num_labels, spacing=spacing, label_warp=label_warp,
                                       lambda_batch_size=lambda_batch_size, pair_batch_size=pair_batch_size,
                                       fixed_mask=fixed_mask, keypoints=keypoints))(lambdas)
  pts = jax.device_get(pts)
  out = {"lambda": lambdas}
  for k in ("dice", "sdlogj_l2r", "sdlogj", "folding_percent", "ndv_percent", "tre"):
    if k in pts:
      out[k] = np.nanmean(np.asarray(pts[k], np.float64), axis=1)
  if with_hd95:
    warped = np.asarray(pts["warped_labels"])
    k, n = warped.shape[:2]
    tile = lambda x: np.broadcast_to(np.asarray(x), (k,) + np.shape(x)).reshape(k * n, *np.shape(x)[1:])  # noqa: E731
    per_label = hd95_l2r(warped.reshape(k * n, *warped.shape[2:]), tile(fixed_labels), labels,
                         moving=tile(moving_labels)).reshape(k, n, -1)
    with np.errstate(invalid="ignore"):
      out["hd95"] = np.mean(np.nanmean(per_label, axis=2), axis=1)
  out["auc"] = np.float64(arc_auc(out["sdlogj_l2r"], out["dice"]))
  return out


def arc_common_range(curves: Sequence[tuple[Sequence[float], ...]] | Sequence[Sequence[float]]) -> tuple[float, float]:
  """The regularity range every curve covers: ``(max of the minima, min of the maxima)``.

  ``curves`` holds each curve's regularity values (e.g. its ``sdlogj_l2r``).
  Raises ``ValueError`` when the curves share no range.
  """
  lo = max(float(np.nanmin(r)) for r in curves)
  hi = min(float(np.nanmax(r)) for r in curves)
  if not hi > lo:
    raise ValueError(f"the ARC curves share no regularity range (largest minimum {lo:.4g} >= smallest "
                     f"maximum {hi:.4g}); compare them on a wider lambda sweep")
  return lo, hi


def arc_auc(regularity: Sequence[float], alignment: Sequence[float],
            r_range: tuple[float, float] | None = None) -> float:
  """Normalised area under an ARC's best-alignment envelope over a regularity range.

  The ARC paper (Sideri-Lampretsa, Rueckert and Qiu 2025) compares whole
  curves by eye and names an area under the ARC as future work; it defines
  no formula. This is ours. With points ``(r_k, a_k)`` (regularity such as
  SDlogJ, lower is smoother; alignment such as Dice, higher is better), the
  envelope ``A(s)`` is the piecewise-linear interpolation of the running
  maximum ``max{a_k : r_k <= s}`` over the sorted ``r_k``: the best alignment
  the model reaches within an irregularity budget ``s``. Then

    AUC = 1 / (r_hi - r_lo) * integral_{r_lo}^{r_hi} A(s) ds,

  the mean best alignment over ``[r_lo, r_hi]``. Pass the range every
  compared curve covers (:func:`arc_common_range`), so that no curve is
  scored where it has no point; the default is this curve's own range.
  Beyond the curve's last point ``A`` stays at its maximum. Units: those of
  the alignment metric (Dice in ``[0, 1]``).
  """
  r = np.asarray(regularity, np.float64)
  a = np.asarray(alignment, np.float64)
  keep = np.isfinite(r) & np.isfinite(a)
  r, a = r[keep], a[keep]
  if r.size == 0:
    return float("nan")
  order = np.argsort(r, kind="stable")
  r, a = r[order], np.maximum.accumulate(a[order])
  lo, hi = (float(r[0]), float(r[-1])) if r_range is None else (float(r_range[0]), float(r_range[1]))
  if hi <= lo:
    return float(np.interp(lo, r, a))  # a single regularity value: the envelope there
  if lo < r[0] - 1e-12 * max(1.0, abs(r[0])):
    raise ValueError(f"arc_auc: the range starts at {lo:.4g}, below the curve's smoothest point {r[0]:.4g}; "
                     "use arc_common_range() so every curve covers the range")
  knots = np.concatenate([[lo], r[(r > lo) & (r < hi)], [hi]])
  values = np.interp(knots, r, a)
  return float(np.sum((values[1:] + values[:-1]) * np.diff(knots)) / 2.0 / (hi - lo))


def plot_arc(curves: Mapping[str, Mapping[str, np.ndarray]], path: str, *,
             dedicated: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
             regularity: str = "sdlogj_l2r") -> None:
  """Draws ARC curves of several models on one figure and saves it to ``path``.

  Args:
    curves: ``{model: arc_curve(...) result}``.
    dedicated: ``{model: {"lambda": [...], "dice": [...], regularity: [...], "hd95": [...]}}``
      for separately trained fixed-lambda models, drawn as markers.
    regularity: the x-axis key (``"sdlogj_l2r"`` or ``"sdlogj"``).
  """
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  panels = [("dice", "mean Dice")] + ([("hd95", "mean HD95 (voxels)")]
                                      if all("hd95" in c for c in curves.values()) else [])
  fig, axes = plt.subplots(1, len(panels) + 1, figsize=(5 * (len(panels) + 1), 4), squeeze=False)
  colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
  for i, (name, c) in enumerate(curves.items()):
    col = colours[i % len(colours)]
    for ax, (key, label) in zip(axes[0], panels):
      ax.plot(c[regularity], c[key], "-o", ms=3, color=col, label=f"{name} (AUC {float(c['auc']):.3f})")
      if dedicated and name in dedicated and key in dedicated[name]:
        ax.scatter(dedicated[name][regularity], dedicated[name][key], marker="*", s=120, color=col,
                   edgecolor="k", zorder=3, label=f"{name} dedicated")
      ax.set_xlabel(f"SDlogJ ({regularity})")
      ax.set_ylabel(label)
    axes[0][-1].plot(c["lambda"], c["folding_percent"], "-o", ms=3, color=col, label=f"{name} % folding")
    if "ndv_percent" in c:
      axes[0][-1].plot(c["lambda"], c["ndv_percent"], "--", color=col, label=f"{name} NDV %")
  axes[0][-1].set_xlabel("lambda")
  axes[0][-1].set_ylabel("% folding (solid), % NDV (dashed)")
  axes[0][0].legend(fontsize=7)
  axes[0][0].set_title("Alignment-regularity characteristic")
  fig.tight_layout()
  save_figure(fig, path, dpi=120)
  plt.close(fig)
