"""CIFAR-10 as decoded uint8 tensors, from the official archive or an image-folder tree."""

from reslab.data.arrays import CifarArrays
from reslab.data.loader import DeviceLoader
from reslab.data.source import load_cifar10

__all__ = ["CifarArrays", "DeviceLoader", "load_cifar10"]
