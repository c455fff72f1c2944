"""AlphaMed: GRPO with rule-based rewards on multiple-choice medical QA, no SFT, and the data-centric ablations."""

TITLE = "AlphaMed: GRPO with rule-based rewards on medical MCQA, no SFT (2025)"
HEADLINE = ("acc/base", "acc/grpo", "format_rate/grpo")
