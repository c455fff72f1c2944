"""Tissue-region graphs from slides: GAT with learned adaptive coarsening for staging and survival, with IG."""

TITLE = "WSI region graphs (Weers et al., MIDL 2026)"
HEADLINE = ("acc/stage/graph", "cindex/graph", "acc/stage/abmil")
