"""The GRPO run that AlphaMed and MedVLM-R1 share: on-policy steps through :func:`jaxmed.core.train_loop`.

  tx = grpo_optimizer(lr, steps)                                      # clip 1.0, AdamW, linear decay
  state, rows = grpo_train(run_dir, params=params, tx=tx, logp_fn=..., sample_fn=..., examples_at=...,
                           reward_weights={"accuracy": 1.0, "format": 0.5}, steps=..., group_size=G, mesh=mesh)

A step: ``examples_at(step)`` picks the step's questions (deterministically
from the step index), ``sample_fn(params, examples, rng)`` samples ``G``
completions per question with the current policy and decodes them, the rule
rewards are scored on the host (:mod:`jaxmed.rl.rewards`), group advantages
are computed, the frozen reference's log-probs are added when ``beta > 0``,
and the jitted, donated update :func:`make_grpo_step` runs ``mu`` optimiser
steps on the :class:`~jaxmed.core.TrainState`.

Because the loop is :func:`jaxmed.core.train_loop`, a GRPO run checkpoints
every ``save_every`` steps and a rerun resumes from the last checkpoint: the
rollout key is ``fold_in(state.rng, step)`` and the questions come from the
step index, so a killed and resumed run ends with bitwise the params of an
uninterrupted one, and ``metrics.jsonl`` / ``completions.jsonl`` hold each
step once.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxmed import core
from jaxmed.core.mesh import batch_sharding, num_batch_shards, replicated
from jaxmed.core.state import jit_step
from jaxmed.rl.accumulate import accumulated_value_and_grad, micro_map
from jaxmed.rl.grpo import group_advantages
from jaxmed.rl.step import score, step_metrics

SCHEDULES = ("constant", "linear", "cosine")


def grpo_optimizer(lr: float, steps: int, *, schedule: str = "linear", warmup_steps: int = 0,
                   max_grad_norm: float | None = 1.0, weight_decay: float = 0.0) -> optax.GradientTransformation:
  """AdamW after global-norm clipping, with a ``constant`` / ``linear`` (to 0, TRL's default) / ``cosine`` lr."""
  if schedule not in SCHEDULES:
    raise ValueError(f"grpo_optimizer: schedule must be one of {SCHEDULES}, got {schedule!r}")
  decay = max(steps - warmup_steps, 1)
  after = {"constant": optax.constant_schedule(lr), "linear": optax.linear_schedule(lr, 0.0, decay),
           "cosine": optax.cosine_decay_schedule(lr, decay)}[schedule]
  lr_at = optax.join_schedules([optax.linear_schedule(0.0, lr, warmup_steps), after], [warmup_steps]) \
      if warmup_steps else after
  parts = [optax.clip_by_global_norm(max_grad_norm)] if max_grad_norm else []
  return optax.chain(*parts, optax.adamw(lr_at, weight_decay=weight_decay))


def make_grpo_step(logp_fn: Callable, tx: optax.GradientTransformation, *, mu: int = 1, epsilon: float = 0.2,
                   epsilon_high: float | None = None, beta: float = 0.0, aggregation: str = "grpo",
                   micro_batch_size: int = 0, group_size: int = 1, state_sharding: Any = None,
                   mesh: jax.sharding.Mesh | None = None) -> Callable:
  """``update(state, batch, rng) -> (state, metrics)``: ``mu`` optimiser steps on one batch, jitted, state donated.

  At ``mu == 1`` the old log-probs are ``stop_gradient(logp)`` (the ratio is
  exactly 1); for ``mu > 1`` they are computed once, before the first step,
  by the trainer's own forward pass, so the ratio never compares the
  sampler's numerics with the trainer's. ``batch``: ``mask``,
  ``advantages`` and (``beta > 0``) ``ref_logp``, plus whatever ``logp_fn``
  reads. With ``state_sharding`` and ``mesh`` the state keeps its layout.

  ``micro_batch_size`` ``m`` (0: the whole batch at once) bounds memory: the
  loss and gradient run over ``B / m`` micro-batches of whole groups of
  ``group_size`` rows in a ``lax.scan`` and the gradients are summed
  (:mod:`jaxmed.rl.accumulate`; the same loss and gradients as one pass).
  """
  micro = dict(micro_batch_size=micro_batch_size, group_size=group_size, mesh=mesh)

  def update(state: core.TrainState, batch, rng):
    del rng  # the GRPO update is deterministic given the batch
    batch = {k: v for k, v in batch.items() if k != "old_logp"}
    if mu > 1:
      batch["old_logp"] = jax.lax.stop_gradient(micro_map(logp_fn, state.params, batch, **micro))
    params, opt_state = state.params, state.opt_state
    for _ in range(mu):
      (value, metrics), grads = accumulated_value_and_grad(logp_fn, params, batch, aggregation=aggregation,
                                                           epsilon=epsilon, epsilon_high=epsilon_high, beta=beta,
                                                           **micro)
      updates, opt_state = tx.update(grads, opt_state, params)
      params = optax.apply_updates(params, updates)
    metrics = {"loss": value, **metrics, "grad_norm": optax.tree.norm(grads)}
    metrics = {k: jnp.asarray(v, jnp.float32) for k, v in metrics.items()}
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state), metrics

  return jit_step(update, state_sharding, mesh, "make_grpo_step")


def place_state(params: Any, tx: optax.GradientTransformation, seed: int, mesh: jax.sharding.Mesh | None = None
                ) -> tuple[core.TrainState, Any]:
  """A TrainState around a copy of ``params`` (placed as they are, e.g. FSDP-sharded) and its sharding tree.

  The copy is what the donated update consumes: ``params`` (often also the
  frozen reference) stay valid. With ``mesh``, leaves not yet on it are
  replicated over it.
  """
  params = jax.jit(lambda p: jax.tree.map(jnp.copy, p))(params)
  opt_state = jax.jit(tx.init)(params)   # the moments follow the params' shardings
  state = core.TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=opt_state,
                          rng=jax.random.PRNGKey(seed))
  if mesh is not None:   # leaves that are not on the mesh yet (step, rng, Adam's count) are replicated over it
    def on_mesh(x):
      sh = x.sharding
      return sh if isinstance(sh, jax.sharding.NamedSharding) and sh.mesh == mesh else replicated(mesh)
    state = jax.device_put(state, jax.tree.map(on_mesh, state))
  return state, jax.tree.map(lambda x: x.sharding, state)


def grpo_train(run_dir: str, *, params: Any, tx: optax.GradientTransformation, logp_fn: Callable,
               sample_fn: Callable, examples_at: Callable[[int], Sequence[Mapping[str, Any]]],
               reward_weights: Mapping[str, float], steps: int, group_size: int, mesh: jax.sharding.Mesh,
               seed: int = 0, mu: int = 1, epsilon: float = 0.2, epsilon_high: float | None = None,
               beta: float = 0.0, aggregation: str = "grpo", advantage_scale: str = "group",
               ref_params: Any = None, ref_logp_fn: Callable | None = None, save_every: int = 50, keep: int = 1,
               log_completions_every: int = 10, completion_record: Callable | None = None,
               micro_batch_size: int = 0, desc: str = "GRPO") -> tuple[core.TrainState, list[dict]]:
  """Runs (or resumes) GRPO in ``run_dir``; returns the final state and every step's metrics row.

  Args:
    params: the initial policy (placed as the update should keep it).
    logp_fn: ``(params, batch) -> [B, T]`` (or ``(logp, entropy)``) for the update.
    sample_fn: ``(params, examples, rng) -> (batch, texts)``: ``G`` completions
      per example, grouped contiguously, and their decoded texts.
    examples_at: ``step -> examples`` of that step (a deterministic choice).
    reward_weights: ``{reward name: weight}`` (:data:`jaxmed.rl.REWARDS`).
    ref_params, ref_logp_fn: the frozen reference and its log-prob function
      (default ``logp_fn``) for ``beta > 0``.
    save_every, keep: checkpoint interval and how many to keep.
    log_completions_every: the first group's completions go to
      ``completions.jsonl`` at step 1 and every this many steps.
    completion_record: ``example -> dict`` of the fields logged with each
      completion (default: question, options, answer).
    micro_batch_size: rows per micro-batch of the update and of the
      reference's log-probs (0: the whole batch; :mod:`jaxmed.rl.accumulate`).
  """
  names = list(reward_weights)
  w = np.asarray([reward_weights[n] for n in names], np.float32)
  shards = num_batch_shards(mesh)
  state, sharding = place_state(params, tx, seed, mesh)
  update = make_grpo_step(logp_fn, tx, mu=mu, epsilon=epsilon, epsilon_high=epsilon_high, beta=beta,
                          aggregation=aggregation, micro_batch_size=micro_batch_size, group_size=group_size,
                          state_sharding=sharding, mesh=mesh)
  ref_fn = jax.jit(lambda p, b: micro_map(ref_logp_fn or logp_fn, p, b, micro_batch_size=micro_batch_size,
                                          group_size=group_size, mesh=mesh)) if beta else None
  if beta and ref_params is None:
    raise ValueError("grpo_train: beta > 0 needs ref_params (the frozen reference policy)")
  record = completion_record or (lambda ex: {k: ex[k] for k in ("question", "options", "answer") if k in ex})
  logs: dict[str, core.MetricWriter] = {}

  def step_fn(state, examples, rng):
    step = int(state.step) + 1
    if "completions" not in logs:   # opened at the first step of this call: drops rows of unsaved steps
      logs["completions"] = core.MetricWriter(run_dir, resume_step=step - 1, filename="completions.jsonl")
    t0 = time.perf_counter()
    batch, texts = sample_fn(state.params, examples, jax.random.fold_in(rng, 0))
    t_roll = time.perf_counter() - t0
    rows = [ex for ex in examples for _ in range(group_size)]
    scores = score(texts, rows, reward_weights)
    rewards = scores @ w
    sampled = batch
    batch = dict(batch, advantages=group_advantages(jnp.asarray(rewards), group_size, scale=advantage_scale))
    if len(rewards) % shards:
      raise ValueError(f"GRPO: {len(rewards)} completions per step do not divide by the mesh's {shards} batch "
                       "shards (data x fsdp); pick prompts_per_step * group_size accordingly")
    batch = jax.device_put({k: v for k, v in batch.items() if k != "old_logp"}, batch_sharding(mesh))
    if ref_fn is not None:
      batch["ref_logp"] = ref_fn(ref_params, batch)
    t1 = time.perf_counter()
    state, m = update(state, batch, rng)
    m = core.to_host(m)
    row = step_metrics(sampled, rewards, scores, names, m, t_rollout=t_roll, t_update=time.perf_counter() - t1,
                       mu=mu)
    row["frac_reward_zero_std"] = float(np.mean(rewards.reshape(-1, group_size).std(1) == 0))
    row["t_rollout_s"], row["t_update_s"] = t_roll, time.perf_counter() - t1
    if step == 1 or step % log_completions_every == 0:
      for text, ex, r in list(zip(texts, rows, rewards))[:group_size]:
        logs["completions"].write(step, {**record(ex), "completion": text, "reward": float(r)})
    return state, row

  try:
    state = core.train_loop(state, step_fn, examples_at, mesh=mesh, run_dir=run_dir, steps=steps,
                            save_every=save_every, keep=keep, log_every=1, desc=desc, place_batch=False)
  finally:
    for log in logs.values():
      log.close()
  return state, core.read_metrics(run_dir)
