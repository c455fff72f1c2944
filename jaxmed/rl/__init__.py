"""Reinforcement learning for language models: rule-based rewards and GRPO.

``rewards``: the MCQA rewards (accuracy, format, partial) and their registry;
``grpo``: group advantages, the k3 KL, the clipped loss and its aggregations;
``step``: the step's pure pieces (rollout, log-probs, scoring, the jitted
``mu``-step update). ``experiments/alphamed`` drives them with per-step
logging and ``completions.jsonl``.
"""

from jaxmed.rl.grpo import AGGREGATIONS, aggregate, group_advantages, grpo_loss, k3_kl, per_token_loss
from jaxmed.rl.rewards import (REWARDS, accuracy_reward, answer_block, evaluation_letter, format_reward, get_reward,
                               partial_reward)
from jaxmed.rl.step import left_pad, lm_logp_fn, make_update, rollout, score, score_and_update, step_metrics

__all__ = ["AGGREGATIONS", "REWARDS", "accuracy_reward", "aggregate", "answer_block", "evaluation_letter",
           "format_reward", "get_reward", "group_advantages", "grpo_loss", "k3_kl", "partial_reward", "per_token_loss", "left_pad", "lm_logp_fn",
           "make_update", "rollout", "score", "score_and_update", "step_metrics"]
