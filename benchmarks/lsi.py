"""Benchmark: exact leave-one-out LSI for all 1797 digits, vmapped, against a per-sample Python loop.

  python benchmarks/lsi.py [--loop-samples 24] [--chunk 0] [--structure full]

The probe is a linear softmax head (float64, damped Newton to the optimum,
prior precision 1) on 16 frozen features: the digits' first 16 principal
components, standardised (a fixed feature map; speed does not depend on it).

* ``vmapped``: :func:`jaxmed.laplace.laplace_sample_information` over all
  1797 samples in one compiled ``lax.map``, ``--chunk`` retrainings vmapped
  per step (default: 1 on CPU, where batched LAPACK calls can deadlock
  XLA:CPU; all at once on GPU).
* ``loop``: the same retraining + posterior + KL for one sample, jitted once
  and called in a Python loop (what a per-sample PyTorch loop does), timed on
  ``--loop-samples`` samples and **extrapolated** linearly to 1797.
* ``influence``: the one-Newton-step approximation for all samples.

Both sides are compiled before timing, and the loop's values are
checked against the vmapped ones. Prints ``name: value unit (ratio vs baseline)``.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import sklearn.datasets
import sklearn.decomposition

from jaxmed import laplace as L


def _timed(fn):
  """Compile ``fn`` (a no-argument function) ahead of time, then time one run."""
  compiled = jax.jit(fn).lower().compile()
  t = time.perf_counter()
  out = jax.block_until_ready(compiled())
  return time.perf_counter() - t, out


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--loop-samples", type=int, default=24)
  parser.add_argument("--chunk", type=int, default=0, help="0: the library default (1 on CPU)")
  parser.add_argument("--structure", default="full", choices=("diag", "full", "kfac"))
  parser.add_argument("--newton-steps", type=int, default=15)
  args = parser.parse_args()
  jax.config.update("jax_enable_x64", True)

  digits = sklearn.datasets.load_digits()
  pcs = sklearn.decomposition.PCA(16, random_state=0).fit_transform(digits.data)
  phi = jnp.asarray((pcs - pcs.mean(0)) / pcs.std(0))
  y = jnp.asarray(digits.target)
  n = phi.shape[0]
  probe = L.LinearProbe(10)
  init = jax.tree.map(lambda p: p.astype(jnp.float64), probe.init(jax.random.PRNGKey(0), phi[:1]))
  fit = L.linear_probe_newton_fit_fn(probe.apply, phi, y, steps=args.newton_steps)
  kw = dict(likelihood="classification", structure=args.structure, linear_probe=args.structure != "kfac")

  t_vmap, lsi = _timed(lambda: L.laplace_sample_information(fit, probe.apply, init, phi, chunk=args.chunk or None,
                                                            **kw)["lsi"])

  theta_hat = jax.jit(fit)(init, jnp.ones(n))
  full = L.laplace(probe.apply, theta_hat, phi, **kw)

  @jax.jit
  def one(i):
    w = jnp.ones(n).at[i].set(0.0)
    loo = L.laplace(probe.apply, fit(init, w), phi, weights=w, **kw)
    return L.posterior_kl(full, loo)["kl"]

  m = min(args.loop_samples, n)
  jax.block_until_ready(one(0))
  t = time.perf_counter()
  looped = [float(one(i)) for i in range(m)]
  t_loop = (time.perf_counter() - t) * n / m
  np.testing.assert_allclose(looped, np.asarray(lsi[:m]), rtol=1e-6)

  if args.structure != "kfac":
    t_infl, _ = _timed(lambda: L.laplace_sample_information(fit, probe.apply, init, phi, chunk=args.chunk or None,
                                                            method="influence", targets=y, **kw)["lsi"])
  print(f"device: {jax.devices()[0].platform}, N={n}, P={(16 + 1) * 10}, structure={args.structure}, "
        f"{args.newton_steps} Newton steps per retraining")
  print(f"lsi_exact_loop_extrapolated: {t_loop:.2f} s (baseline; {m} samples timed, x{n / m:.1f})")
  print(f"lsi_exact_vmapped: {t_vmap:.2f} s ({t_loop / t_vmap:.1f}x faster than the loop)")
  print(f"lsi_exact_vmapped_per_sample: {1e3 * t_vmap / n:.2f} ms")
  if args.structure != "kfac":
    print(f"lsi_influence_per_sample: {1e3 * t_infl / n:.3f} ms ({t_vmap / t_infl:.1f}x faster than exact vmapped)")


if __name__ == "__main__":
  main()
