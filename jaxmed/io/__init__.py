"""Readers for real file formats. Every reader validates; a bad file raises one error naming file and field."""

from jaxmed.io.mcqa import R1_INSTRUCTION, MCQAError, load_mcqa_jsonl, r1_prompt
from jaxmed.io.nifti import NiftiError, load_image_label, load_learn2reg_subjects, load_nifti

__all__ = ["MCQAError", "NiftiError", "R1_INSTRUCTION", "load_image_label", "load_learn2reg_subjects", "load_mcqa_jsonl",
           "load_nifti", "r1_prompt"]
