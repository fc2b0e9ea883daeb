"""reslab: reproducible experiments on residual networks (He et al. 2016) on CIFAR-10."""

__version__ = "0.1.0"
