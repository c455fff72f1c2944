"""ViTa (Zhang, Hager, ..., Rueckert, Pan, 2025): one representation of the heart from 3-D+t cine (SAX + LAX)
and tabular patient factors, serving phenotype regression, disease classification and segmentation.

Stage 1 :mod:`~jaxmed.cardiac.mae` (masked autoencoding of (5, 8, 8) spatio-temporal patches with a 5-D
position embedding); stage 2 :mod:`~jaxmed.cardiac.clip` (image-tabular alignment with the
:mod:`~jaxmed.cardiac.tabular` encoder); stage 3 :mod:`~jaxmed.cardiac.heads`. The synthetic cohort is
:mod:`jaxmed.synth.heart`; transformer blocks are :mod:`jaxmed.nn.vit`.
"""

from jaxmed.cardiac.clip import ProjectionHead, clip_loss, clip_loss_shard_map, l2_normalise
from jaxmed.cardiac.heads import MLPHead, UNETRDecoder, huber_loss, weighted_bce
from jaxmed.cardiac.mae import CineDecoder, CineEncoder, CineMAE, mae_loss
from jaxmed.cardiac.tabular import TabularEncoder, standardise
from jaxmed.cardiac.tokens import grid_shape, patchify, position_embedding_5d, random_masking, unpatchify

__all__ = ["CineDecoder", "CineEncoder", "CineMAE", "MLPHead", "ProjectionHead", "TabularEncoder", "UNETRDecoder",
           "clip_loss", "clip_loss_shard_map", "grid_shape", "huber_loss", "l2_normalise", "mae_loss", "patchify",
           "position_embedding_5d", "random_masking", "standardise", "unpatchify", "weighted_bce"]
