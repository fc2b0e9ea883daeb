"""Reports built from run outputs (result.json and CSVs under runs/), never from W&B."""
