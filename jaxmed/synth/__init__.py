"""Seeded synthetic data with ground truth, for tests, demos and notebooks."""

from jaxmed.synth.atlas import (LABEL_NAMES, NUM_LABELS, atlas_subjects, brain_atlas, random_diffeomorphism,
                                registration_pairs)

__all__ = ["LABEL_NAMES", "NUM_LABELS", "atlas_subjects", "brain_atlas", "random_diffeomorphism",
           "registration_pairs"]
