"""ARC: the alignment-regularity characteristic of a registration model (Sideri-Lampretsa et al. 2025).

A model trained for a range of regularisation weights ``lambda`` traces a
curve of alignment (Dice, HD95) against regularity (SDlogJ, % folding).
:func:`arc_curve` evaluates the whole curve with one ``jax.vmap`` over
``lambda``; :func:`arc_auc` reduces it to one number; :func:`plot_arc` draws
several models on one figure.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxmed.registration import metrics as M
from jaxmed.registration.warp import warp_labels
from jaxmed.core.stage import save_figure

RegisterFn = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]


def arc_points(register: RegisterFn, lambdas: jax.Array, moving: jax.Array, fixed: jax.Array,
               moving_labels: jax.Array, fixed_labels: jax.Array, *, labels: Sequence[int], num_labels: int,
               spacing: Sequence[float] | None = None, label_warp: str = "onehot",
               lambda_batch_size: int | None = None) -> dict[str, jax.Array]:
  """The device part of the ARC, vmapped over ``lambda`` (jit it, or call it under jit).

  Args:
    register: ``(lam, moving, fixed) -> disp``; ``moving, fixed`` are
      ``[N, *S, 1]`` and ``disp`` is ``[N, *S, n]``. For a hypernetwork this
      is ``lambda lam, m, f: hm.apply(hp, lam, m, f)[0]``.
    lambdas: ``[K]`` values.
    moving_labels, fixed_labels: ``[N, *S]`` integer maps.
    labels: the foreground labels to score; ``num_labels`` the class count.
    lambda_batch_size: ``None`` vmaps over all ``K`` lambdas at once. An
      integer ``k`` runs ``jax.lax.map`` over chunks of ``k`` vmapped lambdas:
      less memory, and on a CPU often faster, because a vmap over generated
      weights becomes a grouped convolution (see ``benchmarks/arc.py``).

  Returns:
    Per-pair values, each with leading ``[K, N]``: ``dice`` (mean over
    labels), ``dice_per_label`` ``[K, N, L]``, ``folding_percent``,
    ``sdlogj_l2r``, ``sdlogj`` (masked to the fixed foreground), and
    ``warped_labels`` ``[K, N, *S]`` for host-side HD95.
  """
  mask = fixed_labels > 0

  def one(lam):
    disp = register(lam, moving, fixed)
    warped = warp_labels(moving_labels, disp, num_labels=num_labels, spacing=spacing, method=label_warp)
    per_label = M.dice_per_label(warped, fixed_labels, labels)
    jac = M.jacobian_determinant(disp, spacing)
    return {"dice": jnp.nanmean(per_label, axis=1), "dice_per_label": per_label,
            "folding_percent": M.folding_percent(jac), "sdlogj_l2r": M.sdlogj_l2r(jac),
            "sdlogj": M.sdlogj_masked(jac, mask), "warped_labels": warped}

  lambdas = jnp.asarray(lambdas, jnp.float32)
  if lambda_batch_size is None:
    return jax.vmap(one)(lambdas)
  return jax.lax.map(one, lambdas, batch_size=lambda_batch_size)


def arc_curve(register: RegisterFn, lambdas: Sequence[float], moving, fixed, moving_labels, fixed_labels, *,
              labels: Sequence[int], num_labels: int, spacing: Sequence[float] | None = None,
              label_warp: str = "onehot", with_hd95: bool = True,
              lambda_batch_size: int | None = None) -> dict[str, np.ndarray]:
  """Evaluates a model at ``K`` lambdas on a validation set; returns ``[K]`` means over pairs.

  Keys: ``lambda``, ``dice``, ``hd95`` (if ``with_hd95``), ``sdlogj_l2r``,
  ``sdlogj``, ``folding_percent``, and ``auc`` (:func:`arc_auc` of Dice
  against ``sdlogj_l2r`` with this curve's own range). Device work is one
  jitted vmap over lambda (chunked with ``lambda_batch_size``, see
  :func:`arc_points`); HD95 runs on the host with SciPy.
  """
  lambdas = np.asarray(lambdas, np.float32)
  pts = jax.jit(lambda lam: arc_points(register, lam, moving, fixed, moving_labels, fixed_labels, labels=labels,
                                       num_labels=num_labels, spacing=spacing, label_warp=label_warp,
                                       lambda_batch_size=lambda_batch_size))(lambdas)
  pts = jax.device_get(pts)
  out = {"lambda": lambdas}
  for k in ("dice", "sdlogj_l2r", "sdlogj", "folding_percent"):
    out[k] = np.nanmean(np.asarray(pts[k], np.float64), axis=1)
  if with_hd95:
    fixed_np = np.asarray(fixed_labels)
    out["hd95"] = np.array([np.nanmean(M.hd95(w, fixed_np, labels, spacing)) for w in pts["warped_labels"]])
  out["auc"] = np.float64(arc_auc(out["sdlogj_l2r"], out["dice"]))
  return out


def arc_auc(regularity: Sequence[float], alignment: Sequence[float], x_max: float | None = None) -> float:
  """Normalised area under the ARC's best-alignment envelope.

  With points ``(r_k, a_k)`` (regularity such as SDlogJ, lower is smoother;
  alignment such as Dice, higher is better), define the envelope
  ``A*(s) = max{a_k : r_k <= s}`` (0 where no point qualifies): the best
  alignment the model reaches within an irregularity budget ``s``. Then

    AUC = (1 / x_max) * integral_0^x_max A*(s) ds,

  computed exactly for the step function. It lies in ``[0, max a]``, and is
  higher for a model that aligns well at low irregularity. Pass the same
  ``x_max`` (e.g. the largest SDlogJ over all models) to compare models;
  the default is this curve's own largest regularity.
  """
  r = np.asarray(regularity, np.float64)
  a = np.asarray(alignment, np.float64)
  keep = np.isfinite(r) & np.isfinite(a)
  r, a = r[keep], a[keep]
  if r.size == 0:
    return float("nan")
  x_max = float(r.max()) if x_max is None else float(x_max)
  if x_max <= 0:
    return float(a.max())  # every point is perfectly regular
  order = np.argsort(r)
  r, a = np.clip(r[order], 0.0, x_max), np.maximum.accumulate(a[order])
  edges = np.append(r, x_max)
  return float(np.sum(a * np.diff(edges)) / x_max)


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
    axes[0][-1].plot(c["lambda"], c["folding_percent"], "-o", ms=3, color=col, label=name)
  axes[0][-1].set_xlabel("lambda")
  axes[0][-1].set_ylabel("% folding voxels (J <= 0)")
  axes[0][0].legend(fontsize=7)
  axes[0][0].set_title("Alignment-regularity characteristic")
  fig.tight_layout()
  save_figure(fig, path, dpi=120)
  plt.close(fig)
