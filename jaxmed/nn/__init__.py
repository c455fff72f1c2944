"""Shared network layers used by more than one method."""

from jaxmed.nn.cnn import SmallCNN

__all__ = ["SmallCNN"]
