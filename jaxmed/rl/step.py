"""The GRPO step's pure pieces: rollout, completion log-probs, rule rewards, the log row.

Generic over the policy: the update (:func:`jaxmed.rl.loop.make_grpo_step`)
only needs ``logp_fn(params, batch) -> [B, T]`` completion log-probs; extra
policy inputs (images for a VLM) travel in ``batch``. For a text decoder,
:func:`lm_logp_fn` builds it at the sampling temperature, so the trainer's
log-probs are the sampler's (tested to 1e-5).

  batch = rollout(model, params, prompts, rng, group_size=G, ...)      # sample G completions per prompt
  rewards = score(texts, examples, {"accuracy": 1.0, "format": 0.5}) @ weights   # host-side, pure Python
  batch["advantages"] = group_advantages(rewards, G)
  batch["ref_logp"] = lm_logp_fn(model, T)(ref_params, batch)           # only when beta > 0
  state, metrics = make_grpo_step(lm_logp_fn(model, T, group_size=G), tx)(state, batch, rng)

:func:`jaxmed.rl.loop.grpo_train` runs these steps as a resumable loop.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxmed.core.mesh import batch_sharding
from jaxmed.llm.sampler import generate, left_pad, token_logprobs
from jaxmed.rl.logprobs import shared_prefix_logp
from jaxmed.rl.rewards import get_reward


def rollout(model, params, prompts: Sequence[Sequence[int]], rng: jax.Array, *, group_size: int,
            max_new_tokens: int, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
            eos_ids: tuple[int, ...] = (), pad_id: int = 0, pad_to: int = 0,
            mesh: jax.sharding.Mesh | None = None) -> dict[str, jax.Array]:
  """``G`` sampled completions per prompt, grouped contiguously: ``B = len(prompts) * G``.

  ``pad_to``: left-pad prompts to at least this width (static shapes).
  ``mesh``: decoding splits the rows over ``data x fsdp`` (the update's
  batch layout, so the batch needs no resharding between the two).

  Returns ``prompt``/``prompt_mask`` ``[B, P]``, ``completion``/``mask``
  ``[B, T]`` and the sampler's ``old_logp`` ``[B, T]``.
  """
  tokens, mask = left_pad(prompts, pad_id, pad_to)
  out = generate(model, params, jnp.asarray(tokens), jnp.asarray(mask), rng, max_new_tokens=max_new_tokens,
                 temperature=temperature, top_k=top_k, top_p=top_p, eos_ids=tuple(eos_ids), pad_id=pad_id,
                 num_samples=group_size,   # each prompt prefilled once, its cache repeated G times
                 rows=None if mesh is None else batch_sharding(mesh))
  rep = lambda x: jnp.repeat(jnp.asarray(x), group_size, axis=0)  # noqa: E731
  return {"prompt": rep(tokens), "prompt_mask": rep(mask), "completion": out["tokens"],
          "mask": out["completion_mask"], "old_logp": out["logprobs"]}


def lm_logp_fn(model, temperature: float = 1.0, *, group_size: int | None = None, chunk: int = 8192,
               with_entropy: bool = False) -> Callable[[Any, Mapping[str, jax.Array]], Any]:
  """``(params, batch) -> [B, T]`` log-probs of ``batch["completion"]`` after ``batch["prompt"]``.

  With ``group_size`` (the rows of a group share their prompt, as
  :func:`rollout` makes them), each prompt is encoded once and the head is
  applied in vocabulary chunks at completion positions only
  (:func:`jaxmed.rl.logprobs.shared_prefix_logp`); ``with_entropy`` then also
  returns the per-token entropy. Without it: one forward pass over the
  concatenated sequences.
  """
  if group_size is not None:
    def shared(params, batch):
      return shared_prefix_logp(model, params, batch, group_size=group_size, temperature=temperature, chunk=chunk,
                                with_entropy=with_entropy)
    return shared
  if with_entropy:
    raise ValueError("lm_logp_fn: with_entropy needs group_size (the shared-prefix path)")

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


def step_metrics(batch: Mapping[str, Any], rewards: np.ndarray, scores: np.ndarray, names: Sequence[str],
                 update_metrics: Mapping[str, float], *, t_rollout: float, t_update: float, mu: int = 1
                 ) -> dict[str, float]:
  """One GRPO step's log row: rewards (total ``[B]`` and per reward ``scores`` ``[B, R]`` named ``names``),
  every metric of the update (loss, KL, clip fractions, entropy, grad norm), completion lengths, the
  sampler's mean negative log-prob (``entropy_proxy``, when ``batch`` has ``old_logp``) and the rollout's
  and update's tokens per second."""
  mask = np.asarray(batch["mask"])
  n_tok = float(mask.sum())
  row = {"reward_mean": float(rewards.mean()), "reward_std": float(rewards.std()),
         **{k: float(v) for k, v in update_metrics.items()},
         "completion_len_mean": float(mask.sum(1).mean()), "completion_len_max": float(mask.sum(1).max()),
         "tokens_per_s_rollout": n_tok / t_rollout, "tokens_per_s_update": n_tok * mu / t_update}
  if "old_logp" in batch:
    row["entropy_proxy"] = float(-(np.asarray(batch["old_logp"]) * mask).sum() / max(n_tok, 1.0))
  for j, name in enumerate(names):
    row[f"reward/{name}_mean"] = float(scores[:, j].mean())
    row[f"reward/{name}_std"] = float(scores[:, j].std())
  return row


def stop_at_strings(tok, completion: np.ndarray, mask: np.ndarray, stop: Sequence[str], prefix: str = ""
                    ) -> tuple[np.ndarray, list[str]]:
  """Ends each completion after the token that completes the first stop string (vLLM's ``stop``).

  Sampling is autoregressive, so cutting a sample at its first stop string
  gives exactly a sample of "generate until the stop string": the kept
  tokens and their log-probs are unchanged; the mask drops the rest, so
  neither the rewards nor the update see it.

  Args:
    tok: the tokenizer (``decode``).
    completion, mask: ``[B, T]`` sampled tokens and their mask.
    stop: stop strings, e.g. ``("</answer>",)``.
    prefix: text before the completion that the search may not match in
      (a prefilled ``<think>``), prepended to the returned texts.

  Returns:
    ``(mask [B, T], texts)``: the new mask and ``prefix + decoded completion``.
  """
  completion, mask = np.asarray(completion), np.asarray(mask).astype(bool).copy()
  texts = []
  for row, (c, m) in enumerate(zip(completion, mask)):
    ids = c[m].tolist()
    text = tok.decode(ids, skip_special_tokens=True)
    hits = [text.find(s) + len(s) for s in stop if s in text]
    if hits:
      end = min(hits)
      # the shortest token prefix whose text reaches the end of the stop string
      lo, hi = 1, len(ids)
      while lo < hi:
        mid = (lo + hi) // 2
        if len(tok.decode(ids[:mid], skip_special_tokens=True)) >= end:
          hi = mid
        else:
          lo = mid + 1
      keep = np.flatnonzero(m)[:lo]
      mask[row] = False
      mask[row, keep] = True
      text = tok.decode(ids[:lo], skip_special_tokens=True)
    texts.append(prefix + text)
  return mask, texts
