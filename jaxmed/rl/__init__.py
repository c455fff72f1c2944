"""Reinforcement learning for language models: rule-based rewards and GRPO (work in progress, issue 6).

So far: the MCQA rewards (``rewards``), the GRPO advantages, k3 KL and loss
aggregations (``grpo``), and the step's pure pieces (``step``: rollout,
log-probs, scoring, the jitted ``mu``-step update). The experiment, its
logging and ``completions.jsonl`` follow.
"""

from jaxmed.rl.grpo import AGGREGATIONS, aggregate, group_advantages, grpo_loss, k3_kl, per_token_loss
from jaxmed.rl.rewards import REWARDS, accuracy_reward, answer_block, format_reward, get_reward, partial_reward
from jaxmed.rl.step import left_pad, lm_logp_fn, make_update, rollout, score

__all__ = ["AGGREGATIONS", "REWARDS", "accuracy_reward", "aggregate", "answer_block", "format_reward", "get_reward",
           "group_advantages", "grpo_loss", "k3_kl", "partial_reward", "per_token_loss", "left_pad", "lm_logp_fn",
           "make_update", "rollout", "score"]
