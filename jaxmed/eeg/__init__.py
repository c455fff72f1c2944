"""EEG: general time-series foundation models against specialised EEG models (Turgut et al., 2025).

General models (pretrained on generic series only): :class:`OTiSEncoder`
(the official OTiS: joint attention over variates and time, MAE) and
:class:`TimesFMDecoder` (RevIN, causal next-patch forecasting, loadable from
TimesFM's state-dict layout). Specialised baselines trained from scratch:
:class:`EEGNet` and :class:`BIOT` (linear attention, braindecode's layout). Protocols: :func:`linear_probe`,
:class:`MLPHead` on frozen features, and full fine-tuning. Localisation:
Integrated Gradients per channel and topomaps. Readers live in
``jaxmed.io.eeg``; synthetic EEG in ``jaxmed.synth.eeg``.
"""

from jaxmed.eeg.biot import BIOT, load_braindecode_biot, stft_magnitude
from jaxmed.eeg.chronos_bolt import ChronosBolt, load_chronos_bolt
from jaxmed.eeg.labram import LaBraM, load_braindecode_labram
from jaxmed.eeg.otis_official import load_official_otis
from jaxmed.eeg.timesfm25 import TimesFM25, load_timesfm25
from jaxmed.eeg.eegnet import EEGNet, max_norm, precise_batch_stats
from jaxmed.eeg.finetune import FoundationClassifier, features_fn, foundation_features
from jaxmed.eeg.localisation import (channel_relevance, electrode_relevance, injected_channels, occlusion_relevance,
                                     plot_topomaps, top_k_hit)
from jaxmed.eeg.normalise import num_patches, patchify, robust_normalise
from jaxmed.eeg.otis import (OTiSEncoder, OTiSPretrainer, channel_features, masked_reconstruction_loss,
                             random_patch_mask)
from jaxmed.eeg.probes import MLPHead, linear_probe
from jaxmed.eeg.tasks import (TASKS, beats_chance, chance_metrics, class_weights, scores_from_outputs, task_loss,
                              task_metric, task_metrics)
from jaxmed.eeg.timesfm import (QUANTILES, TimesFMDecoder, load_timesfm_safetensors, next_patch_loss,
                                params_from_timesfm_state_dict, revin_stats)

__all__ = ["LaBraM", "load_braindecode_labram", "ChronosBolt", "load_chronos_bolt", "load_braindecode_biot", "load_official_otis", "TimesFM25", "load_timesfm25", "BIOT", "EEGNet", "FoundationClassifier", "features_fn", "foundation_features", "MLPHead", "OTiSEncoder", "OTiSPretrainer", "QUANTILES", "TASKS", "TimesFMDecoder",
           "beats_chance", "channel_features", "channel_relevance", "chance_metrics", "class_weights",
           "electrode_relevance", "injected_channels", "linear_probe", "load_timesfm_safetensors", "occlusion_relevance",
           "masked_reconstruction_loss", "max_norm", "next_patch_loss", "num_patches", "params_from_timesfm_state_dict",
           "patchify", "plot_topomaps", "precise_batch_stats", "random_patch_mask", "revin_stats", "robust_normalise",
           "scores_from_outputs", "stft_magnitude", "task_loss", "task_metric", "task_metrics", "top_k_hit"]
