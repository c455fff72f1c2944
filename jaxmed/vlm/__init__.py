"""Vision-language models (Qwen2-VL) in Flax: vision tower, M-RoPE decoder, HF checkpoints, GRPO inputs.

Image preprocessing and chat templates live in :mod:`jaxmed.vlm.processor`.
"""

from jaxmed.vlm.config import VisionConfig, VLMConfig
from jaxmed.vlm.graft import (add_vision_tokens, alignment_optimizer, default_mrope_section, graft_language_model,
                              vlm_config_on_lm, vlm_on_pretrained)
from jaxmed.vlm.hf import load_vlm, save_vlm, vlm_param_map
from jaxmed.vlm.model import Qwen2VL, prepare_inputs, scatter_image_features
from jaxmed.vlm.rollout import image_inputs, vlm_logp_fn, vlm_rollout
from jaxmed.vlm.positions import frame_segments, mrope_positions, num_image_tokens, patch_positions
from jaxmed.vlm.vision import VisionTower

__all__ = ["Qwen2VL", "VLMConfig", "VisionConfig", "VisionTower", "frame_segments", "load_vlm", "mrope_positions",
           "num_image_tokens", "patch_positions", "prepare_inputs", "save_vlm", "scatter_image_features",
           "vlm_param_map", "image_inputs", "vlm_logp_fn", "vlm_rollout", "add_vision_tokens", "alignment_optimizer", "default_mrope_section",
           "graft_language_model", "vlm_config_on_lm", "vlm_on_pretrained"]
