"""Reinforcement learning for language models: rule-based rewards and GRPO (work in progress, issue 6).

So far: the MCQA rewards (``rewards``) and the GRPO advantages, k3 KL and
loss aggregations (``grpo``). Rollout, the trainer step and logging follow.
"""

from jaxmed.rl.grpo import AGGREGATIONS, aggregate, group_advantages, grpo_loss, k3_kl, per_token_loss
from jaxmed.rl.rewards import REWARDS, accuracy_reward, answer_block, format_reward, get_reward, partial_reward

__all__ = ["AGGREGATIONS", "REWARDS", "accuracy_reward", "aggregate", "answer_block", "format_reward", "get_reward",
           "group_advantages", "grpo_loss", "k3_kl", "partial_reward", "per_token_loss"]
