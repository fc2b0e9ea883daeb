"""Training one net: the LightningModule and its recipe (schedule), the Trainer, the per-epoch recorder, the final
evaluation, and the device and precision a run uses."""
