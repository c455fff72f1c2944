"""The GRPO step as separate pure pieces: rollout, reference log-probs, rewards, advantages, update.

Generic over the policy: the update only needs ``logp_fn(params, batch) ->
[B, T]`` completion log-probs; extra policy inputs (images for a VLM) travel
in ``batch``. For a text decoder, :func:`lm_logp_fn` builds it from
:func:`jaxmed.llm.sampler.token_logprobs` at the sampling temperature, so the
trainer's log-probs are the sampler's (tested to 1e-5).

  batch = rollout(model, params, prompts, rng, group_size=G, ...)      # sample G completions per prompt
  batch["ref_logp"] = lm_logp_fn(model, T)(ref_params, batch)           # skipped when beta == 0
  rewards = score(texts, examples, {"accuracy": 1.0, "format": 0.5})   # host-side, pure Python
  batch["advantages"] = group_advantages(rewards.sum(-1), G)
  params, opt_state, metrics = update(params, opt_state, batch)        # mu jitted optimiser steps

On a mesh, ``make_update(..., mesh=mesh)`` splits the batch rows over the
mesh's batch axes (``data`` x ``fsdp``) and keeps params and optimiser state
in the shardings they arrive with (e.g. ``jaxmed.llm.param_shardings``: FSDP
over ``data``/``fsdp``, tensor parallel over ``model``).
"""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxmed.core.mesh import batch_sharding, num_batch_shards, replicated
from jaxmed.core.metrics import to_host
from jaxmed.llm.sampler import generate, left_pad, token_logprobs
from jaxmed.rl.grpo import group_advantages, grpo_loss
from jaxmed.rl.rewards import get_reward


def rollout(model, params, prompts: Sequence[Sequence[int]], rng: jax.Array, *, group_size: int,
            max_new_tokens: int, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
            eos_ids: tuple[int, ...] = (), pad_id: int = 0, pad_to: int = 0) -> dict[str, jax.Array]:
  """``G`` sampled completions per prompt, grouped contiguously: ``B = len(prompts) * G``.

  ``pad_to``: left-pad prompts to at least this width (static shapes).

  Returns ``prompt``/``prompt_mask`` ``[B, P]``, ``completion``/``mask``
  ``[B, T]`` and the sampler's ``old_logp`` ``[B, T]``.
  """
  tokens, mask = left_pad([p for p in prompts for _ in range(group_size)], pad_id, pad_to)
  out = generate(model, params, jnp.asarray(tokens), jnp.asarray(mask), rng, max_new_tokens=max_new_tokens,
                 temperature=temperature, top_k=top_k, top_p=top_p, eos_ids=tuple(eos_ids), pad_id=pad_id)
  return {"prompt": jnp.asarray(tokens), "prompt_mask": jnp.asarray(mask), "completion": out["tokens"],
          "mask": out["completion_mask"], "old_logp": out["logprobs"]}


def lm_logp_fn(model, temperature: float = 1.0) -> Callable[[Any, Mapping[str, jax.Array]], jax.Array]:
  """``(params, batch) -> [B, T]`` log-probs of ``batch["completion"]`` after ``batch["prompt"]``."""
  def logp_fn(params, batch):
    full = jnp.concatenate([batch["prompt"], batch["completion"]], axis=1)
    mask = jnp.concatenate([batch["prompt_mask"], batch["mask"].astype(batch["prompt_mask"].dtype)], axis=1)
    lp = token_logprobs(model, params, full, mask, temperature)
    return lp[:, batch["prompt"].shape[1] - 1:]

  return logp_fn


def score(texts: Sequence[str], examples: Sequence[Mapping[str, Any]], weights: Mapping[str, float]) -> np.ndarray:
  """``[B, R]`` rewards (one column per reward function, unweighted) for decoded completions."""
  fns = [get_reward(name) for name in weights]
  return np.asarray([[fn(t, ex) for fn in fns] for t, ex in zip(texts, examples)], np.float32)


def make_update(logp_fn: Callable, tx: optax.GradientTransformation, *, mu: int = 1, epsilon: float = 0.2,
                epsilon_high: float | None = None, beta: float = 0.04, aggregation: str = "grpo",
                mesh: jax.sharding.Mesh | None = None) -> Callable:
  """``update(params, opt_state, batch) -> (params, opt_state, metrics)``: ``mu`` jitted steps on one batch.

  The ratio uses ``batch["old_logp"]`` (the sampling policy) for all ``mu``
  steps, as in GRPO with several iterations per batch.

  ``mesh``: when given, every batch leaf ``[B, ...]`` is split over the batch
  axes (``B`` must divide by ``data * fsdp``) and the updated params and
  optimiser state keep the shardings of the inputs (place the params with
  ``jax.device_put(params, jaxmed.llm.param_shardings(params, mesh))`` and
  build the optimiser state from them). Metrics come back replicated.
  """
  def loss(params, batch):
    return grpo_loss(logp_fn, params, batch, epsilon=epsilon, epsilon_high=epsilon_high, beta=beta,
                     aggregation=aggregation)

  def one(params, opt_state, batch):
    (value, metrics), grads = jax.value_and_grad(loss, has_aux=True)(params, batch)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, {"loss": value, **metrics,
                                                             "grad_norm": optax.tree.norm(grads)}

  compiled: dict[Any, Callable] = {}

  def on_mesh(x):
    """The leaf's sharding if it already lives on ``mesh``; replicated over ``mesh`` otherwise."""
    sh = getattr(x, "sharding", None)
    return sh if isinstance(sh, jax.sharding.NamedSharding) and sh.mesh == mesh else replicated(mesh)

  def step_fn(shardings):
    key = jax.tree_util.tree_structure(shardings), tuple(jax.tree.leaves(shardings))
    if key not in compiled:
      compiled[key] = jax.jit(one, out_shardings=(*shardings, replicated(mesh)) if mesh is not None else None)
    return compiled[key]

  def update(params, opt_state, batch):
    if mesh is not None:
      shards = num_batch_shards(mesh)
      bad = {k: v.shape for k, v in batch.items() if v.shape[0] % shards}
      if bad:
        raise ValueError(f"GRPO update: batch rows must divide by the mesh's {shards} batch shards "
                         f"(data x fsdp); got leaves {bad}. Pick prompts_per_step * group_size accordingly.")
      batch = jax.device_put(dict(batch), batch_sharding(mesh))
      # params keep their (e.g. FSDP) shardings; leaves off the mesh (adam's step count) are replicated
      shardings = jax.tree.map(on_mesh, (params, opt_state))
      params, opt_state = jax.device_put((params, opt_state), shardings)
      fn = step_fn(shardings)
    else:
      fn = step_fn(None)
    for _ in range(mu):
      params, opt_state, metrics = fn(params, opt_state, batch)
    return params, opt_state, metrics

  return update


def step_metrics(batch: Mapping[str, Any], rewards: np.ndarray, scores: np.ndarray, names: Sequence[str],
                 update_metrics: Mapping[str, float], *, t_rollout: float, t_update: float, mu: int = 1
                 ) -> dict[str, float]:
  """One GRPO step's log row: rewards (total ``[B]`` and per reward ``scores`` ``[B, R]`` named ``names``),
  the update's loss / KL / clip fraction / grad norm, completion lengths, the sampler's mean negative
  log-prob (an entropy proxy) and the rollout's and update's tokens per second."""
  mask = np.asarray(batch["mask"])
  n_tok = float(mask.sum())
  row = {"reward_mean": float(rewards.mean()), "reward_std": float(rewards.std()),
         **{k: float(update_metrics[k]) for k in ("loss", "kl", "clip_fraction", "grad_norm")},
         "completion_len_mean": float(mask.sum(1).mean()), "completion_len_max": float(mask.sum(1).max()),
         "entropy_proxy": float(-(np.asarray(batch["old_logp"]) * mask).sum() / max(n_tok, 1.0)),
         "tokens_per_s_rollout": n_tok / t_rollout, "tokens_per_s_update": n_tok * mu / t_update}
  for j, name in enumerate(names):
    row[f"reward/{name}_mean"] = float(scores[:, j].mean())
    row[f"reward/{name}_std"] = float(scores[:, j].std())
  return row


def score_and_update(update: Callable, params: Any, opt_state: Any, batch: dict[str, Any], texts: Sequence[str],
                     examples: Sequence[Mapping[str, Any]], weights: Mapping[str, float], *, group_size: int,
                     advantage_scale: str = "group", ref_logp_fn: Callable | None = None, ref_params: Any = None,
                     t_rollout: float, mu: int = 1) -> tuple[Any, Any, dict[str, float], np.ndarray]:
  """The GRPO step after the rollout: rule rewards of the decoded ``texts``, group advantages, reference
  log-probs (with ``ref_logp_fn``, i.e. beta > 0), the ``update`` and its :func:`step_metrics` row.

  Returns ``(params, opt_state, row, rewards [B])``, where ``rewards`` are the weighted sums.
  """
  names = list(weights)
  scores = score(texts, examples, weights)
  rewards = scores @ np.asarray([weights[n] for n in names], np.float32)
  batch = dict(batch, advantages=group_advantages(jnp.asarray(rewards), group_size, scale=advantage_scale))
  if ref_logp_fn is not None:
    batch["ref_logp"] = ref_logp_fn(ref_params, batch)
  t0 = time.perf_counter()
  params, opt_state, m = update(params, opt_state, batch)
  m = to_host(m)
  row = step_metrics(batch, rewards, scores, names, m, t_rollout=t_rollout, t_update=time.perf_counter() - t0, mu=mu)
  return params, opt_state, row, rewards
