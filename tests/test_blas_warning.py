"""implicit's OpenBLAS threadpool warning does not reach a run's stderr (issue 11): the BLAS pool
of implicit's own library is limited once, when the baseline module loads it."""

from __future__ import annotations

import os
import subprocess
import sys

CODE = """
from harness.checks import example_data
from baselines.implicit_mf import ALSRecommender
model = ALSRecommender(iterations=1, factors=4)
data = example_data()
model.fit(data)
print(model.recommend(data.user_ids.head(2), 3).height)
"""


def test_als_fit_does_not_warn_about_openblas_threads():
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2"}  # as the worker sets it on 2 cores
    done = subprocess.run(
        [sys.executable, "-c", CODE], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "6"
    assert "OpenBLAS is configured" not in done.stderr, done.stderr
