"""MedVLM-R1: a Qwen2-VL-shaped vision-language model on SmolLM2-135M trained with GRPO (no SFT) for medical VQA."""

TITLE = "MedVLM-R1: GRPO for explicit medical VQA reasoning, trained on MRI, tested on MRI/CT/X-ray (2025)"
HEADLINE = ("acc/base/mri", "acc/grpo/mri", "acc/format_only/mri", "acc/chance/mri", "acc/grpo/ct", "acc/grpo/xray",
            "format_rate/grpo")
