"""Train state and the standard jitted, donated training step.

A train state is a plain pytree: ``step``, ``params``, ``opt_state`` and a
base ``rng`` key. The optimiser (an ``optax.GradientTransformation``) is not
part of it; the step closes over it. Per-step randomness comes from
``jax.random.fold_in(state.rng, step)``, so a resumed run draws exactly the
keys an uninterrupted one would.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import flax.struct
import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh, PartitionSpec as P

from jaxmed.core.mesh import replicated, tree_shardings

LossFn = Callable[[Any, Any, jax.Array], tuple[jax.Array, Mapping[str, jax.Array]]]


@flax.struct.dataclass
class TrainState:
  """``step``: int32 scalar; ``params``/``opt_state``: pytrees; ``rng``: base PRNG key (uint32[2])."""
  step: jax.Array
  params: Any
  opt_state: Any
  rng: jax.Array


def step_rng(state: TrainState, step: int | jax.Array | None = None) -> jax.Array:
  """The key for one step: ``fold_in(state.rng, step)`` (defaults to ``state.step``)."""
  return jax.random.fold_in(state.rng, state.step if step is None else step)


def create_train_state(init_fn: Callable[[jax.Array], Any], tx: optax.GradientTransformation,
                       rng: jax.Array, mesh: Mesh,
                       rules: Sequence[tuple[str, P]] = ()) -> tuple[TrainState, Any]:
  """Creates a train state directly in its sharded layout.

  The shapes come from ``jax.eval_shape``; the state is then built by a jit
  with ``out_shardings``, so large params never exist unsharded on one device.

  Args:
    init_fn: ``rng -> params``, e.g. ``lambda r: model.init(r, x)``.
    tx: the optax optimiser.
    rng: PRNG key; split into the init key and the state's base key.
    mesh: the device mesh.
    rules: path rules for :func:`jaxmed.core.mesh.tree_shardings`.

  Returns:
    ``(state, state_sharding)``, the latter a pytree of ``NamedSharding``.
  """
  def init(key):
    init_key, base_key = jax.random.split(key)
    params = init_fn(init_key)
    return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                      opt_state=tx.init(params), rng=base_key)

  abstract = jax.eval_shape(init, rng)
  sharding = tree_shardings(abstract, mesh, rules)
  state = jax.jit(init, out_shardings=sharding)(rng)
  return state, sharding


def make_train_step(loss_fn: LossFn, tx: optax.GradientTransformation, *,
                    state_sharding: Any = None, mesh: Mesh | None = None) -> Callable:
  """Returns ``train_step(state, batch, rng) -> (state, metrics)``, jitted, state donated.

  Args:
    loss_fn: ``(params, batch, rng) -> (loss, metrics)``; ``loss`` is a float
      scalar, ``metrics`` a dict of scalars to log.
    tx: the optimiser.
    state_sharding: if given (with ``mesh``), the output state keeps exactly
      this layout, so the step never changes sharding between calls.
    mesh: the mesh, needed with ``state_sharding``.

  The returned metrics always contain ``loss`` and ``grad_norm`` (float32).
  """
  def train_step(state: TrainState, batch: Any, rng: jax.Array):
    (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, batch, rng)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics = {k: jnp.asarray(v, jnp.float32) for k, v in dict(aux).items()}
    metrics["loss"] = jnp.asarray(loss, jnp.float32)
    metrics["grad_norm"] = optax.tree.norm(grads).astype(jnp.float32)
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state), metrics

  return jit_step(train_step, state_sharding, mesh, "make_train_step")


def jit_step(step: Callable, state_sharding: Any = None, mesh: Mesh | None = None, caller: str = "jit_step"
             ) -> Callable:
  """``step(state, batch, rng) -> (state, metrics)`` jitted with the state donated; with ``state_sharding``
  (and ``mesh``) the output state keeps that layout and the metrics are replicated."""
  if state_sharding is None:
    return jax.jit(step, donate_argnums=(0,))
  if mesh is None:
    raise ValueError(f"{caller}: pass mesh together with state_sharding")
  return jax.jit(step, donate_argnums=(0,), out_shardings=(state_sharding, replicated(mesh)))
