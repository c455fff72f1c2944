"""Benchmark: ViTa MAE training-step throughput (tokens/s) with masking vs a dense encoder without masking.

  python benchmarks/vita.py [--size 32] [--frames 10] [--batch 16] [--dim 64] [--depth 4] [--steps 10]

Both steps are jitted ``value_and_grad`` + AdamW updates of the same cine
MAE on the same batch: the masked one encodes the 30% visible tokens (mask
ratio 0.7), the dense baseline encodes every token (mask ratio 0, the
decoder then sees no mask tokens); tokens/s counts all tokens of the
batch. Compilation is excluded (one warm-up step each).
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxmed import cardiac
from jaxmed.synth import heart


def step_time(mae, x, ratio, steps):
  params = mae.init(jax.random.PRNGKey(0), x[:1], jax.random.PRNGKey(1), 0.7)
  tx = optax.adamw(1e-3)
  opt = tx.init(params)

  def loss_fn(p, k):
    pred, mask = mae.apply(p, x, k, ratio)
    if ratio == 0:
      mask = jnp.ones_like(mask)   # the dense baseline scores every patch
    return cardiac.mae_loss(pred, x, mask, (5, 8, 8))

  @jax.jit
  def step(p, o, k):
    loss, g = jax.value_and_grad(loss_fn)(p, k)
    u, o = tx.update(g, o, p)
    return optax.apply_updates(p, u), o, loss

  params, opt, loss = step(params, opt, jax.random.PRNGKey(0))
  loss.block_until_ready()
  t0 = time.perf_counter()
  for i in range(steps):
    params, opt, loss = step(params, opt, jax.random.PRNGKey(i + 1))
  loss.block_until_ready()
  return (time.perf_counter() - t0) / steps


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--size", type=int, default=32)
  ap.add_argument("--frames", type=int, default=10)
  ap.add_argument("--batch", type=int, default=16)
  ap.add_argument("--dim", type=int, default=64)
  ap.add_argument("--depth", type=int, default=4)
  ap.add_argument("--steps", type=int, default=10)
  args = ap.parse_args()
  c = heart.cardiac_cohort(args.batch, seed=0, size=args.size, frames=args.frames, num_sax=6)
  x = jnp.asarray(c["cine"])
  mae = cardiac.CineMAE(x.shape[1:], dim=args.dim, depth=args.depth, heads=4)
  tokens = args.batch * int(np.prod(cardiac.grid_shape(x.shape[1:], (5, 8, 8))))
  masked = step_time(mae, x, 0.7, args.steps)
  dense = step_time(mae, x, 0.0, args.steps)
  print(f"device: {jax.devices()[0].device_kind}")
  print(f"vita/mae_step_masked: {tokens / masked:.4g} tokens/s ({dense / masked:.2f}x the dense baseline, "
        f"{tokens / dense:.4g} tokens/s; batch {args.batch}, {tokens // args.batch} tokens/subject, "
        f"dim {args.dim}, depth {args.depth})")


if __name__ == "__main__":
  main()
