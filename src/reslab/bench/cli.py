"""The `reslab-bench` console script (make bench)."""

from __future__ import annotations

import signal
import sys

import hydra
from omegaconf import DictConfig

from reslab import options
from reslab.errors import Interrupted, one_line_errors
from reslab.paths import CONF_DIR


@hydra.main(config_path=str(CONF_DIR), config_name="bench", version_base="1.3")
@one_line_errors
def _main(cfg: DictConfig) -> None:
    from reslab.bench.report import write
    from reslab.bench.run import run

    try:
        result = run(cfg)
    except (
        Interrupted,
        KeyboardInterrupt,
    ) as err:  # inside reslab's fits its Checkpointer turns Ctrl-C into Interrupted
        signum = getattr(err, "signum", signal.SIGINT)
        print(f"reslab: bench stopped by {signal.Signals(signum).name}; nothing written", file=sys.stderr, flush=True)
        sys.exit(128 + signum)
    print(f"wrote {write(result, cfg.bench.out_dir)}", flush=True)


main = options.hydra_entry(_main)
