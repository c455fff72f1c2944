"""Tissue-region graphs from slides: GAT with learned adaptive coarsening for staging and survival, with IG."""

TITLE = "WSI region graphs (Weers et al., MIDL 2026)"
HEADLINE = ("cv/region_graph/stage_acc", "cv/patch_graph/stage_acc", "cv/abmil/stage_acc", "oracle/stage_acc")
