"""Measurements made outside training, each a command: on fresh initialisations (`reslab-gradflow`, shattered
gradients, 1,000 layers) and on finished runs' saved weights (`reslab-reprobe`, the lesion study, other input sizes).
They build on the probes (reslab.probes) and write files that the reports (reslab.report) read."""
