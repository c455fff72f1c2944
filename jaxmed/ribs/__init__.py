"""Thoracolumbar stump ribs (Moeller, Kirschke et al., 2025): segmentation, rib-to-vertebra assignment,
iterative rib length, the vertebra frame, morphology features (ours and the official set) and a stump classifier.

Arrays are in the canonical ``("P", "I", "R")`` orientation of
:mod:`jaxmed.io.spine_labels` (use :func:`jaxmed.io.nifti.reorient` for any
NIfTI); positions are mm in the voxel-index frame (index x spacing). The
segmentation network is :class:`jaxmed.nn.UNet3D`.
"""

from jaxmed.ribs.assignment import assign_ribs, candidate_region, dominance_gap_mm, rib_components
from jaxmed.ribs.classifier import KINDS, binary_metrics, feature_matrix, fit_stump_classifier
from jaxmed.ribs.features import LOCAL_FEATURES, PARTS, point_along, rib_features, side_frame, to_side_frame
from jaxmed.ribs.frame import corpus_centres_mm, inferior_direction, vertebra_frame
from jaxmed.ribs.length import STUMP_THRESHOLD_MM, RibLength, ray_exit, resample_mask, rib_length, smooth_mask
from jaxmed.ribs.measure import corpus_centre_mm, measure_ribs
from jaxmed.ribs.official_features import OFFICIAL_FEATURES, official_features
from jaxmed.ribs.segmentation import (PatchSource, deep_supervision_loss, dice_ce_loss, dice_score, normalise_ct,
                                      rib_probability, soft_dice_loss)

__all__ = ["KINDS", "LOCAL_FEATURES", "OFFICIAL_FEATURES", "PARTS", "PatchSource", "RibLength",
           "STUMP_THRESHOLD_MM", "assign_ribs", "binary_metrics", "candidate_region", "corpus_centre_mm",
           "corpus_centres_mm", "deep_supervision_loss", "dice_ce_loss", "dice_score", "dominance_gap_mm",
           "feature_matrix", "fit_stump_classifier", "inferior_direction", "measure_ribs", "normalise_ct",
           "official_features", "point_along", "ray_exit", "resample_mask", "rib_components", "rib_features",
           "rib_length", "rib_probability", "side_frame", "smooth_mask", "soft_dice_loss", "to_side_frame",
           "vertebra_frame"]
