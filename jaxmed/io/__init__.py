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
from jaxmed.io.slide import Slide, SlideError, open_slide, write_pyramidal_tiff
from jaxmed.io.stacks import load_stacks
from jaxmed.io.torch_checkpoint import load_torch_checkpoint
from jaxmed.io.vqa import load_vqa_jsonl

__all__ = ["load_torch_checkpoint", "load_cine", "load_cmrxrecon", "load_dynamic_h5", "load_ismrmrd", "MONTAGES", "REFERENTIAL_19", "TCP_NAMES", "TCP_PAIRS", "EEGDataError", "EEGRecording", "load_eeg",
           "montage_data", "normalise_channel_names", "preprocess", "read_raw", "standard_channel_name", "write_edf",
           "LINE_FREQ", "MONTAGE_CHANNELS", "TUH_TCP_20", "TUH_TCP_22", "line_frequency", "parse_channel_label",
           "TUEV_CODES", "ChannelEvent", "read_lemon_ages", "read_tuev_rec", "read_tusz_csv", "write_tuev_rec",
           "write_tusz_csv", "channel_window_labels", "event_windows", "fixed_windows", "window_labels", "CardiacDataError", "load_cine_nifti", "load_tabular_csv", "load_vita_npz", "load_stacks", "KSpaceError", "load_kspace_h5", "MCQAError", "NiftiError", "R1_INSTRUCTION", "MEDVLM_R1_TASK", "medvlm_r1_prompt", "Slide", "SlideError", "load_image_label",
           "learn2reg_val_pairs", "load_learn2reg_keypoints", "load_learn2reg_subjects", "load_mcqa_jsonl", "load_nifti", "load_spine_ct", "reorient", "save_nifti", "axcodes", "open_slide", "r1_prompt", "write_pyramidal_tiff",
           "load_vqa_jsonl"]
