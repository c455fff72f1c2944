"""Reinforcement learning for language models: rule-based rewards and GRPO.

``rewards``: the MCQA rewards (accuracy, format, partial) and their registry;
``grpo``: group advantages, the k3 KL, the clipped loss and its aggregations;
``logprobs``: completion log-probs with each prompt encoded once per group;
``accumulate``: the update's loss and gradients over micro-batches (bounded memory);
``step``: rollout, log-prob functions, scoring and the log row;
``loop``: the jitted, donated GRPO update on a ``TrainState`` and the
resumable on-policy run that AlphaMed and MedVLM-R1 share.
"""

from jaxmed.rl.accumulate import accumulated_value_and_grad, micro_map
from jaxmed.rl.grpo import AGGREGATIONS, aggregate, group_advantages, grpo_loss, k3_kl, per_token_loss
from jaxmed.rl.logprobs import chunked_logp, shared_prefix_logp
from jaxmed.rl.loop import grpo_optimizer, grpo_train, make_grpo_step, place_state
from jaxmed.rl.rewards import (REWARDS, accuracy_reward, answer_block, evaluation_letter, format_reward, get_reward,
                               medvlm_r1_accuracy_reward, medvlm_r1_format_reward, named_options,
                               option_accuracy_reward, partial_reward)
from jaxmed.rl.step import left_pad, lm_logp_fn, rollout, score, step_metrics, stop_at_strings

__all__ = ["AGGREGATIONS", "REWARDS", "accumulated_value_and_grad", "accuracy_reward", "aggregate", "answer_block",
           "chunked_logp",
           "evaluation_letter", "format_reward", "get_reward", "group_advantages", "grpo_loss", "grpo_optimizer",
           "grpo_train", "k3_kl", "left_pad", "lm_logp_fn", "make_grpo_step", "medvlm_r1_accuracy_reward",
           "medvlm_r1_format_reward", "micro_map", "named_options",
           "option_accuracy_reward", "partial_reward", "per_token_loss",
           "place_state", "rollout", "score", "shared_prefix_logp", "step_metrics", "stop_at_strings"]
