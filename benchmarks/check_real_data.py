"""Check: ml-100k, ml-latest-small (and lastfm-2k) from /work/shared/data prepare through a local
registry file, with counts matching their SOURCE.md. Not part of the test suite (needs the data).

    python benchmarks/check_real_data.py [DATA_DIR]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from harness.datasets import prepare

EXPECTED = {  # from each folder's SOURCE.md: raw interactions, users, items
    "ml-100k": (100_000, 943, 1682),
    "ml-latest-small": (100_836, 610, 9724),
    "lastfm-2k": (92_834, 1892, 17632),
}


def main(data: Path) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        reg = Path(tmp) / "local.toml"
        reg.write_text(f"""
[ml-100k]
format = "movielens-100k"
source = {{ path = "{data / "ml-100k"}" }}
categories = "genres"
  [ml-100k.splits.temporal]
  protocol = "temporal"
  quantile = 0.8

[ml-latest-small]
format = "movielens-latest"
source = {{ path = "{data / "ml-latest-small"}" }}
categories = "genres"
  [ml-latest-small.splits.temporal]
  protocol = "temporal"
  quantile = 0.8

[lastfm-2k]
format = "lastfm"
source = {{ path = "{data / "lastfm-hetrec2011-2k"}" }}
weight = "plays"
  [lastfm-2k.splits.random]
  protocol = "random"
  test_ratio = 0.2
""")
        failed = 0
        print(
            f"{'dataset':16} {'interactions':>12} {'users':>6} {'items':>6}  train  truth  test_users  ok"
        )
        for name, expected in EXPECTED.items():
            meta = prepare(name, home=Path(tmp) / "home", registry_file=reg)
            info = meta["info"]
            got = (info["interactions"], info["users"], info["items"])
            ok = got == expected
            failed += not ok
            print(
                f"{name:16} {got[0]:>12} {got[1]:>6} {got[2]:>6}  {info['train_rows']:>5} "
                f"{info['truth_rows']:>6} {info['test_users']:>11}  {'yes' if ok else f'NO, expected {expected}'}"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "/work/shared/data")))
