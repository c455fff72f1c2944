"""Seeded synthetic data with ground truth, for tests, demos and notebooks."""

from jaxmed.synth.atlas import (LABEL_NAMES, NUM_LABELS, atlas_subjects, brain_atlas, pair_displacement,
                                random_diffeomorphism,
                                registration_pairs)
from jaxmed.synth.lesions import CLASS_NAMES as LESION_CLASS_NAMES
from jaxmed.synth.lesions import ORGAN_NAMES, lesion_images
from jaxmed.synth.slides import TISSUES, synthetic_slide

__all__ = ["LABEL_NAMES", "NUM_LABELS", "atlas_subjects", "brain_atlas", "pair_displacement", "random_diffeomorphism",
           "registration_pairs", "LESION_CLASS_NAMES", "ORGAN_NAMES", "lesion_images", "TISSUES",
           "synthetic_slide"]
