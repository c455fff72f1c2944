"""Whole-slide-image graphs (Weers et al., "From Pixels to Histopathology", MIDL 2026).

Slides (``jaxmed.io.slide``) at physical resolutions (``slide_graph``) ->
CLAM-style tissue mask -> SLIC tissue regions -> named interpretable
features, tile by tile, with Macenko stain normalisation (``stain``) and
watershed nuclei (``nuclei``) -> ``jraph`` region graph, padded to
power-of-two buckets -> GAT with learned adaptive coarsening -> staging
(cross-entropy) and survival (Cox partial likelihood) -> Integrated
Gradients per region and per feature. Baselines: a patch-grid graph with the
same network, and gated-attention MIL (ABMIL) on patch features.
"""

from jaxmed.pathology.coarsen import Coarse, coarsen, connected_components, edge_similarity
from jaxmed.pathology.features import FEATURE_NAMES, region_features
from jaxmed.pathology.nuclei import nucleus_table, segment_nuclei
from jaxmed.pathology.slide_graph import level_for_mpp, read_at_mpp, slide_graphs
from jaxmed.pathology.stain import Stains, macenko_stains, normalise_stains, stain_concentrations
from jaxmed.pathology.gat import GATLayer
from jaxmed.pathology.graph import (batch_and_pad, masks, next_pow2, node_graph_index, pad_to_bucket, region_graph,
                                    stack_graphs, unstack_graph)
from jaxmed.nn.integrated_gradients import integrated_gradients
from jaxmed.pathology.mil import ABMIL, GatedAttentionPool
from jaxmed.pathology.model import RegionGraphNet
from jaxmed.pathology.regions import grid_regions, paint_regions, region_adjacency, relabel, slic_regions
from jaxmed.pathology.survival import concordance_index, cox_loss
from jaxmed.pathology.tissue import tissue_mask

__all__ = ["ABMIL", "Coarse", "FEATURE_NAMES", "GATLayer", "GatedAttentionPool", "RegionGraphNet", "Stains",
           "level_for_mpp", "macenko_stains", "normalise_stains", "nucleus_table", "read_at_mpp", "segment_nuclei",
           "slide_graphs", "stain_concentrations", "batch_and_pad",
           "coarsen", "concordance_index", "connected_components", "cox_loss", "edge_similarity", "grid_regions",
           "integrated_gradients", "masks", "next_pow2", "node_graph_index", "pad_to_bucket", "paint_regions", "region_adjacency",
           "region_features", "region_graph", "relabel", "slic_regions", "stack_graphs", "tissue_mask", "unstack_graph"]
