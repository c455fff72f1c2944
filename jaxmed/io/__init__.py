"""Readers for real file formats. Every reader validates; a bad file raises one error naming file and field."""

from jaxmed.io.nifti import NiftiError, load_image_label, load_learn2reg_subjects, load_nifti

__all__ = ["NiftiError", "load_image_label", "load_learn2reg_subjects", "load_nifti"]
