"""GRPO advantages and the clipped policy loss with a k3 KL penalty (definitions as in TRL and Tunix).

Shapes: ``G`` completions per prompt, ``B = num_prompts * G`` completions in a
batch (grouped contiguously), ``T`` completion tokens; ``mask`` ``[B, T]`` is 1
on completion tokens up to and including the first EOS.

Per token, with ``ratio = exp(logp - old_logp)``:

  loss_t = -min(ratio A, clip(ratio, 1 - eps, 1 + eps) A) + beta * k3_t,
  k3_t   = exp(ref_logp - logp) - (ref_logp - logp) - 1      (>= 0, unbiased KL estimator)

and the per-token losses are aggregated by one of :data:`AGGREGATIONS`:

* ``grpo``: mean over each sequence's tokens, then mean over sequences;
* ``bnpo``: sum over all tokens / number of active tokens in the batch;
* ``dr_grpo``: sum over all tokens / (B * max_completion_len) (Dr. GRPO);
* ``dapo``: sum over all tokens / ``num_active_tokens``, the *global* count
  across devices and micro-batches (pass it in; defaults to this batch's).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

AGGREGATIONS = ("grpo", "bnpo", "dr_grpo", "dapo")


def group_advantages(rewards: jax.Array, group_size: int, *, scale: str = "group") -> jax.Array:
  """``[B]`` rewards -> ``[B]`` advantages ``r - mean_g`` (divided by ``std_g + 1e-4``).

  ``scale``: ``"group"`` (GRPO: the std of the prompt's own group),
  ``"batch"`` (the std over the whole batch), or ``"none"`` (Dr. GRPO: no
  division). Stds are unbiased (``ddof=1``), as ``torch.std`` in TRL. A group
  whose rewards are all equal gets advantage 0 under every choice.
  """
  if rewards.shape[0] % group_size:
    raise ValueError(f"group_advantages: {rewards.shape[0]} rewards do not split into groups of {group_size}")
  r = rewards.reshape(-1, group_size)
  centred = (r - r.mean(axis=1, keepdims=True)).reshape(-1)
  if scale == "none":
    return centred
  if scale == "group":
    std = jnp.repeat(jnp.std(r, axis=1, ddof=1), group_size)
  elif scale == "batch":
    std = jnp.std(rewards, ddof=1)
  else:
    raise ValueError(f"group_advantages: scale must be 'group', 'batch' or 'none', got {scale!r}")
  return centred / (std + 1e-4)


def k3_kl(logp: jax.Array, ref_logp: jax.Array) -> jax.Array:
  """Per-token k3 estimate of ``KL(pi || pi_ref)``: ``exp(d) - d - 1`` with ``d = ref_logp - logp``."""
  d = ref_logp - logp
  return jnp.exp(d) - d - 1.0


def per_token_loss(logp, old_logp, advantages, *, epsilon: float = 0.2, epsilon_high: float | None = None,
                   beta: float = 0.04, ref_logp=None) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Clipped surrogate (+ ``beta`` k3) per token: ``[B, T]``, and per-token diagnostics."""
  ratio = jnp.exp(logp - old_logp)
  adv = advantages[:, None]
  hi = epsilon if epsilon_high is None else epsilon_high
  clipped = jnp.clip(ratio, 1.0 - epsilon, 1.0 + hi)
  loss = -jnp.minimum(ratio * adv, clipped * adv)
  is_clipped = (ratio * adv) > (clipped * adv)
  kl = jnp.zeros_like(loss)
  if beta:
    if ref_logp is None:
      raise ValueError("per_token_loss: beta > 0 needs ref_logp (the frozen reference policy's log-probs)")
    kl = k3_kl(logp, ref_logp)
    loss = loss + beta * kl
  return loss, {"kl": kl, "clipped": is_clipped.astype(loss.dtype), "ratio": ratio}


def aggregate(per_token: jax.Array, mask: jax.Array, kind: str = "grpo", *,
              num_active_tokens: jax.Array | None = None) -> jax.Array:
  """Reduces ``[B, T]`` per-token values over the active ``mask`` by ``kind`` (see the module docstring)."""
  m = mask.astype(per_token.dtype)
  total = jnp.sum(per_token * m)
  if kind == "grpo":
    return jnp.mean(jnp.sum(per_token * m, axis=1) / jnp.maximum(m.sum(axis=1), 1.0))
  if kind == "bnpo":
    return total / jnp.maximum(m.sum(), 1.0)
  if kind == "dr_grpo":
    return total / (per_token.shape[0] * per_token.shape[1])
  if kind == "dapo":
    n = m.sum() if num_active_tokens is None else num_active_tokens
    return total / jnp.maximum(n, 1.0)
  raise ValueError(f"aggregate: kind must be one of {AGGREGATIONS}, got {kind!r}")


def grpo_loss(logp_fn: Callable[..., jax.Array], params, batch: dict, *, epsilon: float = 0.2,
              epsilon_high: float | None = None, beta: float = 0.04, aggregation: str = "grpo",
              num_active_tokens: jax.Array | None = None, token_count: jax.Array | None = None
              ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """The GRPO objective for one (micro-)batch.

  Args:
    logp_fn: ``(params, batch) -> [B, T]`` completion log-probs at the sampling
      temperature, or ``([B, T] log-probs, [B, T] entropies)`` (the policy's
      extra inputs, e.g. images, travel in ``batch``).
    batch: ``mask`` ``[B, T]``, ``advantages`` ``[B]``, ``ref_logp`` ``[B, T]``
      when ``beta > 0``, and ``old_logp`` ``[B, T]`` (the policy that sampled,
      for several updates per batch). Without ``old_logp`` the update is
      on-policy: ``old_logp = stop_gradient(logp)``, as TRL does at one
      update per batch, so the ratio is exactly 1 in any precision.
    token_count: the active tokens that token means divide by (``bnpo``,
      the ``dapo`` default and the metrics); default this batch's. A
      micro-batch passes its whole batch's count, so that the micro-batches'
      values sum to the batch's (:mod:`jaxmed.rl.accumulate`).

  Returns:
    ``(loss, metrics)`` with the masked means of ``kl``, ``clip_fraction``,
    ``clip_low`` (ratio below ``1 - eps`` with a negative advantage),
    ``clip_high`` (above ``1 + eps_high`` with a positive one) and, when
    ``logp_fn`` gives them, ``entropy``.
  """
  out = logp_fn(params, batch)
  logp, entropy = out if isinstance(out, tuple) else (out, None)
  old = batch.get("old_logp")
  old = jax.lax.stop_gradient(logp) if old is None else old
  per_token, diag = per_token_loss(logp, old, batch["advantages"], epsilon=epsilon,
                                   epsilon_high=epsilon_high, beta=beta, ref_logp=batch.get("ref_logp"))
  mask = batch["mask"]
  token_mean = lambda v, n=token_count: aggregate(v, mask, "dapo", num_active_tokens=n)  # noqa: E731
  if aggregation == "bnpo" and token_count is not None:
    loss = token_mean(per_token)
  else:
    n = token_count if num_active_tokens is None else num_active_tokens
    loss = aggregate(per_token, mask, aggregation, num_active_tokens=n)
  adv = batch["advantages"][:, None]
  hi = epsilon if epsilon_high is None else epsilon_high
  low = ((diag["ratio"] < 1.0 - epsilon) & (adv < 0)).astype(loss.dtype)
  high = ((diag["ratio"] > 1.0 + hi) & (adv > 0)).astype(loss.dtype)
  metrics = {"kl": token_mean(diag["kl"]), "clip_fraction": token_mean(diag["clipped"]),
             "clip_low": token_mean(low), "clip_high": token_mean(high)}
  if entropy is not None:
    metrics["entropy"] = token_mean(entropy)
  return loss, metrics
