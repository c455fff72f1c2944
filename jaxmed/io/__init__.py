"""Readers for real file formats. Every reader validates; a bad file raises one error naming file and field."""

from jaxmed.io.cardiac import CardiacDataError, load_cine_nifti, load_tabular_csv, load_vita_npz
from jaxmed.io.eeg import (LINE_FREQ, MONTAGE_CHANNELS, MONTAGES, REFERENTIAL_19, TCP_NAMES, TCP_PAIRS, TUH_TCP_20,
                           TUH_TCP_22, EEGDataError, EEGRecording, line_frequency, load_eeg, montage_data,
                           normalise_channel_names, parse_channel_label, preprocess, read_raw, standard_channel_name,
                           write_edf)
from jaxmed.io.eeg_labels import (TUEV_CODES, ChannelEvent, read_lemon_ages, read_tuev_rec, read_tusz_csv,
                                  write_tuev_rec, write_tusz_csv)
from jaxmed.io.eeg_windows import channel_window_labels, event_windows, fixed_windows, window_labels
from jaxmed.io.cine_kspace import load_cine, load_cmrxrecon, load_dynamic_h5, load_ismrmrd
from jaxmed.io.kspace import KSpaceError, load_kspace_h5
from jaxmed.io.mcqa import MEDVLM_R1_TASK, R1_INSTRUCTION, MCQAError, load_mcqa_jsonl, medvlm_r1_prompt, r1_prompt
from jaxmed.io.learn2reg import learn2reg_val_pairs, load_learn2reg_keypoints
from jaxmed.io.nifti import (NiftiError, axcodes, load_image_label, load_learn2reg_subjects,
                             load_nifti, load_spine_ct, reorient, save_nifti)
from jaxmed.io.rib_masks import detect_rib_scheme, load_rib_mask
from jaxmed.io.slide import Slide, SlideError, open_slide, write_pyramidal_tiff
from jaxmed.io.stacks import load_stacks
from jaxmed.io.torch_checkpoint import load_torch_checkpoint
from jaxmed.io.vqa import load_vqa_jsonl

__all__ = ["axcodes", "CardiacDataError", "channel_window_labels", "ChannelEvent", "detect_rib_scheme",
           "EEGDataError", "EEGRecording", "event_windows", "fixed_windows", "KSpaceError", "learn2reg_val_pairs",
           "LINE_FREQ", "line_frequency",
           "load_cine", "load_cine_nifti", "load_cmrxrecon", "load_dynamic_h5", "load_eeg", "load_image_label",
           "load_ismrmrd", "load_kspace_h5", "load_learn2reg_keypoints", "load_learn2reg_subjects", "load_mcqa_jsonl",
           "load_nifti", "load_rib_mask", "load_spine_ct", "load_stacks", "load_tabular_csv", "load_torch_checkpoint",
           "load_vita_npz",
           "load_vqa_jsonl", "MCQAError", "medvlm_r1_prompt", "MEDVLM_R1_TASK", "MONTAGE_CHANNELS", "montage_data",
           "MONTAGES", "NiftiError", "normalise_channel_names", "open_slide", "parse_channel_label", "preprocess",
           "R1_INSTRUCTION", "r1_prompt", "read_lemon_ages", "read_raw", "read_tuev_rec", "read_tusz_csv",
           "REFERENTIAL_19", "reorient", "save_nifti", "Slide", "SlideError", "standard_channel_name", "TCP_NAMES",
           "TCP_PAIRS", "TUEV_CODES", "TUH_TCP_20", "TUH_TCP_22", "window_labels", "write_edf", "write_pyramidal_tiff",
           "write_tuev_rec", "write_tusz_csv"]
