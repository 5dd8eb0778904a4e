"""Converters of published CRNN checkpoints to hf_crnn checkpoints; see conversion/README.md."""
