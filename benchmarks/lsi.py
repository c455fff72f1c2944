"""Benchmark: all-sample LSI in closed form against exact leave-one-out retraining.

  python benchmarks/lsi.py [--json PATH] [--n 50000] [--dim 512] [--exact-samples 500]
                           [--exact-n 2000] [--exact-dim 64] [--loop-fraction 0.1]

Part 1, digits (N = 1797; 16 PCA features, standardised; C = 10; linear softmax probe, prior precision 1,
float64, Newton to a gradient tolerance):

* ``exact_lax_map``: :func:`jaxmed.laplace.laplace_sample_information` (``method="exact"``, full GGN) over all
  samples in one compiled ``lax.map``; the chunk (leave-one-out runs vmapped per step) is printed. On CPU it
  is 1 (batched LAPACK calls can deadlock XLA:CPU), so this is a compiled loop, not a vmap.
* ``exact_python_loop`` (baseline): the same retraining, posterior and KL for one sample, jitted once and
  called from a Python loop, timed on ``--loop-fraction`` of the samples (at least 10%) and scaled to N.
* ``closed_form``: :func:`jaxmed.laplace.lsi_closed_form` for all samples, no retraining.

Part 2, a CIFAR-scale probe: ``--n`` samples of a ``--dim``-d Gaussian mixture with C = 10 classes (class means
at distance ~3 sd) and 10% of the labels flipped to another class; the probe fitted by L-BFGS (float64), the
closed form in float32. Its exact check runs on ``--exact-samples`` random samples of a smaller probe of the
same kind (``--exact-n`` samples, ``--exact-dim`` features): exact leave-one-out at D = 512 needs the
``[5130, 5130]`` GGN rebuilt per sample (about 1.3e12 flops, ~10 s on 2 CPU cores), 500 of them over an hour.
Pass ``--exact-n 50000 --exact-dim 512`` on an accelerator for the full-size check. Exact retraining here is
Newton from the closed-form estimate (at most 6 steps, gradient max-norm 1e-9; the probe is strictly convex, so
this is the unique leave-one-out optimum; ``tests/laplace/test_lsi_closed_form.py`` checks warm against cold
restarts), with the leave-one-out Laplace at the refitted parameters.

Prints ``name: value unit (ratio vs baseline)``; ``--json`` writes the figures.
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np
import scipy.stats
import sklearn.datasets
import sklearn.decomposition
import sklearn.metrics

from jaxmed import laplace as L
from jaxmed.laplace.lsi import loo_chunk


def _timed(fn, *args):
  """Compile ``fn`` ahead of time, then time one run: ``(seconds, output)``."""
  compiled = jax.jit(fn).lower(*args).compile()
  t = time.perf_counter()
  out = jax.block_until_ready(compiled(*args))
  return time.perf_counter() - t, out


def mixture_probe(n: int, dim: int, classes: int = 10, flip: float = 0.1, seed: int = 0):
  """``(features [n, dim], noisy labels [n], flipped [n])``: unit-variance clusters, 10% labels flipped."""
  rng = np.random.default_rng(seed)
  means = rng.normal(size=(classes, dim)) * 3.0 / np.sqrt(2 * dim)     # pairwise distances ~3
  labels = rng.integers(0, classes, n)
  x = means[labels] + rng.normal(size=(n, dim))
  flipped = rng.random(n) < flip
  noisy = labels.copy()
  noisy[flipped] = (labels[flipped] + rng.integers(1, classes, flipped.sum())) % classes
  return x, noisy, flipped


def digits_part(loop_fraction: float, figures: dict) -> None:
  digits = sklearn.datasets.load_digits()
  pcs = sklearn.decomposition.PCA(16, random_state=0).fit_transform(digits.data)
  phi = jnp.asarray((pcs - pcs.mean(0)) / pcs.std(0))
  y = jnp.asarray(digits.target)
  n = phi.shape[0]
  probe = L.LinearProbe(10)
  init = jax.tree.map(lambda p: p.astype(jnp.float64), probe.init(jax.random.PRNGKey(0), phi[:1]))
  fit = L.linear_probe_newton_fit_fn(probe.apply, phi, y, steps=30, tol=1e-9)
  kw = dict(likelihood="classification", structure="full", linear_probe=True)
  chunk = 1 if jax.default_backend() == "cpu" else loo_chunk(170, n, ("full",), 2.0)
  t_map, exact = _timed(lambda: L.laplace_sample_information(fit, probe.apply, init, phi, chunk=chunk, **kw)["lsi"])

  theta_hat = jax.jit(fit)(init, jnp.ones(n))
  full = L.laplace(probe.apply, theta_hat, phi, **kw)

  @jax.jit
  def one(i):
    w = jnp.ones(n).at[i].set(0.0)
    loo = L.laplace(probe.apply, fit(init, w), phi, weights=w, **kw)
    return L.posterior_kl(full, loo)["kl"]

  m = max(int(np.ceil(loop_fraction * n)), int(np.ceil(0.1 * n)))
  jax.block_until_ready(one(0))
  t = time.perf_counter()
  looped = [float(one(i)) for i in range(m)]
  t_loop = (time.perf_counter() - t) * n / m
  np.testing.assert_allclose(looped, np.asarray(exact[:m]), rtol=1e-6, atol=1e-12)
  t_closed, closed = _timed(lambda: L.lsi_closed_form(phi, probe.apply(theta_hat, phi), y,
                                                      likelihood="classification")["lsi"])
  rho = float(scipy.stats.spearmanr(closed, exact)[0])
  print(f"# digits: device {jax.devices()[0].platform}, N={n}, P=170, float64")
  print(f"exact_python_loop: {t_loop:.2f} s (baseline; {m} of {n} samples timed, scaled x{n / m:.1f})")
  print(f"exact_lax_map: {t_map:.2f} s (chunk={chunk}; {t_loop / t_map:.2f}x vs the loop)")
  print(f"closed_form_digits: {t_closed:.3f} s ({t_loop / t_closed:.0f}x vs the loop; Spearman vs exact {rho:.5f})")
  figures.update({"exact/s_digits_loop": t_loop, "exact/s_digits_lax_map": t_map, "exact/lax_map_chunk": chunk,
                  "closed_form/s_digits": t_closed, "spearman/closed_vs_exact_digits": rho})


def scale_part(n: int, dim: int, figures: dict) -> None:
  x, noisy, flipped = mixture_probe(n, dim)
  probe = L.LinearProbe(10)
  with jax.enable_x64(True):
    phi, y = jnp.asarray(x), jnp.asarray(noisy, jnp.int32)
    init = probe.init(jax.random.PRNGKey(0), phi[:1])
    t_fit, theta = _timed(lambda f, t: L.linear_probe_lbfgs_fit_fn(probe.apply, f, t, tol=1e-5, steps=1000)(
        init, jnp.ones(n)), phi, y)
    logits = np.asarray(probe.apply(theta, phi))
  x32, l32 = jnp.asarray(x, jnp.float32), jnp.asarray(logits, jnp.float32)
  t_closed, lsi = _timed(lambda a, b: L.lsi_closed_form(a, b, y, likelihood="classification")["lsi"], x32, l32)
  auroc = float(sklearn.metrics.roc_auc_score(flipped, np.asarray(lsi)))
  loss = np.asarray(L.per_sample_loss(l32, y))
  print(f"# scale: N={n}, D={dim}, C=10, P={(dim + 1) * 10}, 10% flipped; probe fit (L-BFGS, float64) {t_fit:.1f} s")
  print(f"closed_form/s_{n // 1000}k: {t_closed:.2f} s (float32, all {n} samples; {1e3 * t_closed / n:.3f} ms each)")
  print(f"auroc/mislabel_closed_{n // 1000}k: {auroc:.4f} (loss: "
        f"{sklearn.metrics.roc_auc_score(flipped, loss):.4f})")
  figures.update({f"closed_form/s_{n // 1000}k": t_closed, f"auroc/mislabel_closed_{n // 1000}k": auroc,
                  "probe_fit/s_lbfgs": t_fit, f"auroc/mislabel_loss_{n // 1000}k": float(
                      sklearn.metrics.roc_auc_score(flipped, loss))})


def exact_check(n: int, dim: int, samples: int, figures: dict) -> None:
  x, noisy, _ = mixture_probe(n, dim, seed=1)
  probe = L.LinearProbe(10)
  with jax.enable_x64(True):
    phi, y = jnp.asarray(x), jnp.asarray(noisy, jnp.int32)
    init = probe.init(jax.random.PRNGKey(0), phi[:1])
    fit = L.linear_probe_newton_fit_fn(probe.apply, phi, y, steps=40, tol=1e-9)
    theta = jax.jit(fit)(init, jnp.ones(n))
    logits = probe.apply(theta, phi)
    t_closed, closed = _timed(lambda f, l, t: L.lsi_closed_form(f, l, t, likelihood="classification")["lsi"],
                              phi, logits, y)
    subset = jnp.asarray(np.sort(np.random.default_rng(0).choice(n, samples, replace=False)))

    def exact_lsi(f, t, idx):  # arrays as arguments: closed-over arrays would be constant-folded by XLA
      fit_f = L.linear_probe_newton_fit_fn(probe.apply, f, t, steps=40, tol=1e-9)
      # from the closed-form estimate Newton converges quadratically: 6 steps reach the float64 floor
      warm_f = L.linear_probe_newton_fit_fn(probe.apply, f, t, steps=6, tol=1e-9)
      return L.laplace_sample_information(fit_f, probe.apply, init, f, likelihood="classification",
                                          structure="full", linear_probe=True, method="warm", warm_fit_fn=warm_f,
                                          targets=t, indices=idx)["lsi"]

    t_exact, exact = _timed(exact_lsi, phi, y, subset)
  rho = float(scipy.stats.spearmanr(np.asarray(closed)[np.asarray(subset)], exact)[0])
  rel = float(np.median(np.abs(np.asarray(closed)[np.asarray(subset)] / np.asarray(exact) - 1)))
  per_exact, per_closed = t_exact / samples, t_closed / n
  print(f"# exact check: N={n}, D={dim}, P={(dim + 1) * 10}, {samples} random samples, float64")
  print(f"spearman/closed_vs_exact_{samples}: {rho:.5f} (median relative difference {rel:.4f})")
  print(f"exact_per_sample: {1e3 * per_exact:.1f} ms (baseline); closed_form_per_sample: {1e3 * per_closed:.4f} ms "
        f"({per_exact / per_closed:.0f}x)")
  figures.update({f"spearman/closed_vs_exact_{samples}": rho, "speedup/closed_vs_exact_per_sample":
                  per_exact / per_closed, "exact_check/n": n, "exact_check/dim": dim,
                  "exact_check/median_rel_diff": rel})


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--json", default="")
  parser.add_argument("--n", type=int, default=50_000)
  parser.add_argument("--dim", type=int, default=512)
  parser.add_argument("--exact-samples", type=int, default=500)
  parser.add_argument("--exact-n", type=int, default=2000)
  parser.add_argument("--exact-dim", type=int, default=64)
  parser.add_argument("--loop-fraction", type=float, default=0.1)
  parser.add_argument("--skip-digits", action="store_true")
  parser.add_argument("--skip-scale", action="store_true")
  args = parser.parse_args()
  jax.config.update("jax_enable_x64", True)
  figures: dict = {}
  if not args.skip_digits:
    digits_part(args.loop_fraction, figures)
  jax.config.update("jax_enable_x64", False)
  if not args.skip_scale:
    scale_part(args.n, args.dim, figures)
  exact_check(args.exact_n, args.exact_dim, args.exact_samples, figures)
  if args.json:
    with open(args.json, "w") as f:
      json.dump(figures, f, indent=1, sort_keys=True)


if __name__ == "__main__":
  main()
