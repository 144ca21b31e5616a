"""Rebuild the embedded ml-latest-small files from GroupLens' release.

    python harness/datasets/embedded/build.py /path/to/ml-latest-small

Reads ratings.csv and movies.csv, writes them unchanged in content (same columns, same rows)
as zstd-compressed parquet, and copies GroupLens' README.txt (the license terms, which allow
redistribution under the same conditions) next to them.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import polars as pl


def build(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    ratings = pl.read_csv(
        source / "ratings.csv",
        schema_overrides={
            "userId": pl.Int32,
            "movieId": pl.Int32,
            "rating": pl.Float32,
            "timestamp": pl.Int64,
        },
    )
    movies = pl.read_csv(source / "movies.csv", schema_overrides={"movieId": pl.Int32})
    ratings.write_parquet(target / "ratings.parquet", compression="zstd", compression_level=19)
    movies.write_parquet(target / "movies.parquet", compression="zstd", compression_level=19)
    shutil.copyfile(source / "README.txt", target / "README.txt")


if __name__ == "__main__":
    build(Path(sys.argv[1]), Path(__file__).with_name("ml-latest-small"))
