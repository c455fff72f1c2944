"""Per-layer rematerialisation whose recomputation waits for the layer's output cotangent.

``jax.checkpoint`` marks what to recompute but leaves the compiler free to
schedule the recomputation: XLA's CPU backend runs every layer's
recomputation at the start of the backward pass (and merges it with the
forward pass, since it drops the optimisation barriers first), so all
activations are alive at once again and its memory plan shows no saving.
:func:`recompute_layer` makes the order structural: the forward pass keeps
only the layer's inputs; the backward pass rebuilds the layer from inputs
that carry a data dependency on the incoming cotangent (``x + 0 * g[0]``:
not folded away, because ``0 * g`` is not 0 for a non-finite ``g``), so
layer ``i`` is recomputed only after layer ``i + 1``'s gradient exists, and
cannot be merged with its forward pass. The params carry the same
dependency, so under FSDP their all-gather is redone in the backward pass
rather than every gathered layer being kept from the forward pass. The result equals ``jax.checkpoint``
with ``nothing_saveable`` (every activation recomputed; tests/llm/test_remat.py).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp


def _is_float(x) -> bool:
  return x is not None and jnp.issubdtype(jnp.result_type(x), jnp.floating)


def recompute_layer(apply: Callable) -> Callable:
  """``apply(params, x, *args) -> out`` whose backward pass recomputes it after ``out``'s cotangent arrives.

  ``args`` may hold float arrays (they get cotangents, e.g. a KV cache) and
  integer / boolean arrays or ``None`` (they get none).
  """
  @jax.custom_vjp
  def layer(params, x, *args):
    return apply(params, x, *args)

  def fwd(params, x, *args):
    return apply(params, x, *args), (params, x, args)

  def bwd(res, g):
    params, x, args = res
    first = jax.tree.leaves(g)[0]
    anchor = jnp.ravel(first)[0].astype(jnp.float32) * 0.0
    x = x + anchor.astype(x.dtype)   # the recomputation depends on the cotangent
    # so do the params: under FSDP their all-gather is redone here instead of being kept from the forward pass
    params = jax.tree.map(lambda w: w + anchor.astype(w.dtype), params)
    leaves, tree = jax.tree.flatten(args)
    floats = [i for i, a in enumerate(leaves) if _is_float(a)]

    def replay(p, xx, *float_leaves):
      full = list(leaves)
      for i, a in zip(floats, float_leaves):
        full[i] = a
      return apply(p, xx, *jax.tree.unflatten(tree, full))

    _, vjp = jax.vjp(replay, params, x, *[leaves[i] for i in floats])
    dp, dx, *d_float = vjp(g)
    d_leaves = [None] * len(leaves)
    for i, d in zip(floats, d_float):
      d_leaves[i] = d
    return (dp, dx, *jax.tree.unflatten(tree, d_leaves))

  layer.defvjp(fwd, bwd)
  return layer
