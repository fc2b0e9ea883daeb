"""Measurements of signal flow: per-layer gradient norms and layer responses (ResNet Fig. 7)."""

from reslab.probes.gradients import grad_norm_rows, gradient_norms, weight_layers
from reslab.probes.responses import layer_responses

__all__ = ["grad_norm_rows", "gradient_norms", "layer_responses", "weight_layers"]
