"""`reslab-bench` (make bench): how many images per second reslab trains, set beside the loop a user would write
and beside the model alone on one fixed batch (the machine's limit for that model).

timing.py (clocks), data.py (random CIFAR-shaped data), baseline.py (the user's loop), limit.py (model alone,
matmul peak), pipeline.py (reslab's pipeline and its probes), run.py (cases x variants x repeats, interleaved),
report.py (JSON + README), cli.py (the Hydra entry, `reslab-bench`), lanes.py (one run per core or one run with all
threads), cost.py (`reslab-cost`: each net's cost after its sweep), steps.py (the training step that cost and
limit both time). Kept light at import.
"""
