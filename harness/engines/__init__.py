"""Scoring engines other than the default local one (polars/numpy in :mod:`harness.metrics`).

:mod:`harness.engines.spark` runs the same metric definitions as Spark SQL, for list files larger
than one machine. It is the only module that imports pyspark (an optional extra)."""
