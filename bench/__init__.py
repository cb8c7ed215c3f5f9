"""Benchmarks: `python -m bench.<name> --json` prints one JSON object measuring Guidepost and
its baseline in the same run. Never part of `make test`.

BLAS threads are pinned to one per process (unless set): on two cores, multithreaded BLAS in
small statsmodels fits only fights the other process for the cores.
"""

import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")
