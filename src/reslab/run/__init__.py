"""Runs as records: a run's identity and directory, its lock, checkpoints and final outputs, the config check
before anything is written, multiruns (the guard, the sweep's manifest, labels, stop forwarding), budget ladders,
DDP launching, and the numerics version."""
