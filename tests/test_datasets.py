"""Loaders on small files in the real layouts, the registry, prepare() and the store."""

import zipfile
from datetime import datetime

import numpy as np
import polars as pl
import pytest

from harness.datasets import prepare
from harness.datasets.loaders import LOADERS
from harness.errors import ConfigError, DataError, FetchError, NotFoundError
from harness.store.splits import list_splits, load_split, split_meta


def registry(tmp_path, text):
    path = tmp_path / "my.toml"
    path.write_text(text)
    return path


# -- loaders -------------------------------------------------------------------------------
def test_movielens_latest(tmp_path):
    (tmp_path / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n1,10,4.0,964982703\n2,20,2.5,964982224\n"
    )
    (tmp_path / "movies.csv").write_text(
        'movieId,title,genres\n10,"Heat, The (1995)",Action|Crime\n20,X,(no genres listed)\n'
    )
    inter, users, items = LOADERS["movielens-latest"](tmp_path, {})
    assert inter.columns == ["user_id", "item_id", "timestamp", "rating"]
    assert inter["timestamp"][0] == datetime(2000, 7, 30, 18, 45, 3)
    assert items["genres"].to_list() == [["Action", "Crime"], []]
    assert items["title"][0] == "Heat, The (1995)" and users is None


def test_movielens_100k(tmp_path):
    (tmp_path / "ml-100k").mkdir()
    (tmp_path / "ml-100k" / "u.data").write_text("196\t242\t3\t881250949\n186\t302\t3\t891717742\n")
    flags = ["0"] * 19
    flags[1] = flags[8] = "1"  # Action, Drama
    (tmp_path / "ml-100k" / "u.item").write_bytes(
        ("242|Misérables, Les (1995)|01-Jan-1995||http://x|" + "|".join(flags) + "\n").encode(
            "latin-1"
        )
    )
    (tmp_path / "ml-100k" / "u.user").write_text(
        "196|49|M|writer|55105\n186|39|F|executive|00000\n"
    )
    inter, users, items = LOADERS["movielens-100k"](tmp_path, {})
    assert inter.height == 2 and inter["rating"].to_list() == [3.0, 3.0]
    assert items.row(0, named=True)["title"] == "Misérables, Les (1995)"
    assert items["genres"][0].to_list() == ["Action", "Drama"]
    assert users["zip_code"].to_list() == ["55105", "00000"]


def test_movielens_1m(tmp_path):
    (tmp_path / "ratings.dat").write_text("1::1193::5::978300760\n2::661::3::978302109\n")
    (tmp_path / "movies.dat").write_text(
        "1193::One Flew (1975)::Drama\n661::J::Animation|Musical\n"
    )
    inter, _, items = LOADERS["movielens-1m"](tmp_path, {})
    assert inter["item_id"].to_list() == [1193, 661]
    assert items["genres"].to_list() == [["Drama"], ["Animation", "Musical"]]


def test_kion(tmp_path):
    (tmp_path / "data_original").mkdir()
    d = tmp_path / "data_original"
    (d / "interactions.csv").write_text(
        "user_id,item_id,last_watch_dt,total_dur,watched_pct\n176549,9506,2021-05-11,4250,72.0\n"
        "699317,1659,2021-05-29,8317,100.0\n"
    )
    (d / "users.csv").write_text(
        "user_id,age,income,sex,kids_flg\n176549,age_25_34,income_60_90,М,1\n"
    )
    (d / "items.csv").write_text(
        "item_id,content_type,title,title_orig,release_year,genres,countries,for_kids,age_rating,"
        'studios,directors,actors,description,keywords\n9506,film,Т,T,2020.0,"драмы, комедии",'
        'Россия,,16.0,,Д,А,описание,"a, b"\n'
    )
    inter, users, items = LOADERS["kion"](tmp_path, {})
    assert inter["timestamp"][1] == datetime(2021, 5, 29)
    assert inter.columns[:4] == ["user_id", "item_id", "total_dur", "watched_pct"]
    assert users["sex"][0] == "М" and items["genres"][0] == "драмы, комедии"


def test_lastfm(tmp_path):
    (tmp_path / "user_artists.dat").write_bytes(
        b"userID\tartistID\tweight\r\n2\t51\t13883\r\n2\t52\t11690\r\n"
    )
    (tmp_path / "artists.dat").write_text(
        "id\tname\turl\tpictureURL\n51\tDuran Duran\thttp://a\thttp://b\n"
    )
    inter, _, items = LOADERS["lastfm"](tmp_path, {})
    assert inter["plays"].to_list() == [13883.0, 11690.0] and "timestamp" not in inter.columns
    assert items["name"][0] == "Duran Duran"


def test_csv_and_parquet_with_column_mapping(tmp_path):
    log = pl.DataFrame({"uid": ["a", "a", "b"], "iid": ["x", "y", "x"], "ts": [10, 20, 30]})
    log.write_csv(tmp_path / "log.csv")
    log.write_parquet(tmp_path / "log.parquet")
    cfg = {"columns": {"user_id": "uid", "item_id": "iid", "timestamp": "ts"}}
    for fmt, name in (("csv", "log.csv"), ("parquet", "log.parquet")):
        inter, _, _ = LOADERS[fmt](tmp_path / name, cfg)
        assert inter["user_id"].dtype == pl.Utf8
        assert inter["timestamp"].to_list()[0] == datetime(1970, 1, 1, 0, 0, 10)
    with pytest.raises(DataError, match=r"log\.csv: missing column\(s\) user"):
        LOADERS["csv"](tmp_path / "log.csv", {"columns": {"user_id": "user", "item_id": "iid"}})


# -- registry and prepare ------------------------------------------------------------------
def own_csv(tmp_path, split='protocol = "temporal"\nquantile = 0.5', extra=""):
    rows = ["user,item,when,stars"]
    # users 1..4 rate items at increasing days; user 9 only late (cold)
    for u in range(1, 5):
        for d in range(1, 7):
            rows.append(f"u{u},i{(u + d) % 5},{d * 86400},{1 + (d % 5)}")
    rows += ["u9,i1,600000,5", "u9,i2,600001,5"]
    (tmp_path / "log.csv").write_text("\n".join(rows) + "\n")
    return registry(
        tmp_path,
        f"""
[mine]
format = "csv"
source = {{ path = "log.csv" }}
columns = {{ user_id = "user", item_id = "item", timestamp = "when" }}
weight = "stars"
dedup = "last"
{extra}
  [mine.splits.main]
  {split}
""",
    )


def test_prepare_own_csv_temporal(tmp_path, home):
    reg = own_csv(tmp_path)
    meta = prepare("mine", home=home, registry_file=reg)
    s = load_split(home, "mine")
    assert s.train["user_id"].dtype == pl.Utf8 and s.train["weight"].dtype == pl.Float32
    # every train interaction is before the cutoff; the test users' truth is not in train
    assert s.train["timestamp"].max() < meta["cutoff"]
    assert s.truth.join(s.train, on=["user_id", "item_id"]).height == 0
    assert s.test_users.filter(pl.col("user_id") == "u9")["cold"].to_list() == [True]
    assert set(s.test_users["user_id"]) == set(s.truth["user_id"])
    assert meta["info"]["cold_users"] == 1 and meta["is_default"]


def test_temporal_truth_after_train_on_synthetic(home):
    meta = prepare("synthetic-small", home=home)
    s = load_split(home, "synthetic-small")
    raw_test = s.truth.height
    assert raw_test > 0 and s.train["timestamp"].max() < meta["cutoff"]
    assert s.truth.join(s.train, on=["user_id", "item_id"]).height == 0
    assert s.items["categories"].dtype == pl.List(pl.Utf8)
    assert s.users.columns == ["user_id", "age", "income", "sex", "kids_flg"]
    assert {"warm_users", "cold_users", "train_rows", "truth_rows"} <= set(meta["info"])


def test_ml_latest_small_embedded_prepares_offline(home):
    meta = prepare("ml-latest-small", home=home)
    info = meta["info"]
    # rating >= 4 keeps 26818 + 8551 + 13211 = 48580 of 100836 ratings (GroupLens README counts)
    assert info["cleaning"]["raw_interactions"] == 100836 and info["interactions"] == 48580
    # default split: each user's latest 20% (rounded down) of positives; no rated item repeats
    assert meta["split"] == "user-temporal" and meta["cutoff"] is None
    assert (info["train_rows"], info["truth_rows"], info["test_users"]) == (39100, 9480, 608)
    s = load_split(home, "ml-latest-small", parts=["train", "truth", "items"])
    per_user = (
        s.train.group_by("user_id").len().join(s.truth.group_by("user_id").len(), on="user_id")
    )
    n = (per_user["len"] + per_user["len_right"]).to_numpy()
    assert (per_user["len_right"].to_numpy() == np.maximum(n // 5, 1)).all()  # at least one
    meta = prepare("ml-latest-small", home=home, split="temporal")
    s = load_split(home, "ml-latest-small", "temporal", parts=["train", "truth", "items"])
    assert (
        s.train["timestamp"].max() < meta["cutoff"] <= s.train["timestamp"].max().replace(year=2100)
    )
    assert s.items.filter(pl.col("item_id") == 1)["categories"].to_list()[0] == [
        "Adventure",
        "Animation",
        "Children",
        "Comedy",
        "Fantasy",
    ]
    assert s.truth.join(s.train, on=["user_id", "item_id"]).height == 0


def test_leave_last_and_ratio_and_random(tmp_path, home):
    for split, check in [
        (
            'protocol = "leave-last"\nn = 2',
            lambda s: s.truth.group_by("user_id").len()["len"].max() <= 2,
        ),
        ('protocol = "ratio"\ntest_ratio = 0.5', lambda s: s.truth.height > 0),
        ('protocol = "random"\ntest_ratio = 0.3\nseed = 1', lambda s: s.cutoff is None),
    ]:
        reg = own_csv(tmp_path, split)
        prepare("mine", home=home, registry_file=reg, force=True)
        s = load_split(home, "mine")
        assert check(s) and s.truth.join(s.train, on=["user_id", "item_id"]).height == 0


def test_leave_last_takes_each_users_latest(tmp_path, home):
    (tmp_path / "log.csv").write_text("u,i,t\n1,a,1\n1,b,2\n1,c,3\n2,a,5\n2,d,4\n")
    reg = registry(
        tmp_path,
        """
[ll]
format = "csv"
source = { path = "log.csv" }
columns = { user_id = "u", item_id = "i", timestamp = "t" }
  [ll.splits.last]
  protocol = "leave-last"
""",
    )
    prepare("ll", home=home, registry_file=reg)
    s = load_split(home, "ll")
    assert sorted(s.truth.rows()) == [(1, "c"), (2, "a")]
    assert sorted(s.train.select("user_id", "item_id").rows()) == [(1, "a"), (1, "b"), (2, "d")]


def test_min_counts_once_versus_iterated(tmp_path, home):
    # item z has 2 users; dropping user 3 (one interaction) leaves z with 1 user only
    (tmp_path / "log.csv").write_text(
        "u,i,t\n1,x,1\n1,y,2\n1,z,3\n2,x,1\n2,y,2\n3,z,9\n2,x,10\n1,y,11\n"
    )
    for mode, expected_items in (("once", {"x", "y", "z"}), ("iterate", {"x", "y"})):
        reg = registry(
            tmp_path,
            f"""
[m]
format = "csv"
source = {{ path = "log.csv" }}
columns = {{ user_id = "u", item_id = "i", timestamp = "t" }}
min_user = 2
min_item = 2
min_count_mode = "{mode}"
dedup = "none"
  [m.splits.r]
  protocol = "leave-last"
  exclude_seen = false
""",
        )
        meta = prepare("m", home=home, registry_file=reg, force=True)
        s = load_split(home, "m")
        assert set(s.train["item_id"]) | set(s.truth["item_id"]) == expected_items, mode
        assert meta["info"]["cleaning"]["min_count_rounds"] >= 1


def test_dedup_keeps_latest(tmp_path, home):
    (tmp_path / "log.csv").write_text("u,i,t,r\n1,a,1,1\n1,a,5,5\n1,b,9,3\n2,a,2,2\n")
    reg = registry(
        tmp_path,
        """
[d]
format = "csv"
source = { path = "log.csv" }
columns = { user_id = "u", item_id = "i", timestamp = "t" }
weight = "r"
  [d.splits.s]
  protocol = "leave-last"
""",
    )
    prepare("d", home=home, registry_file=reg)
    s = load_split(home, "d")
    assert s.train.filter(pl.col("user_id") == 1)["weight"].to_list() == [5.0]


def test_timeless_dataset_refuses_temporal(tmp_path, home):
    (tmp_path / "user_artists.dat").write_text("userID\tartistID\tweight\n1\t2\t3\n")
    reg = registry(
        tmp_path,
        """
[fm]
format = "lastfm"
source = { path = "." }
  [fm.splits.t]
  protocol = "temporal"
  days = 7
""",
    )
    with pytest.raises(ConfigError, match=r"\[fm.splits.t\]: protocol 'temporal' needs timestamps"):
        prepare("fm", home=home, registry_file=reg)


@pytest.mark.parametrize(
    "body, message",
    [
        ('format = "csv"\nsource = { path = "x" }\ncolour = 1', "unknown key(s) colour"),
        ('format = "xls"\nsource = { path = "x" }', "unknown format 'xls'"),
        (
            'format = "csv"\nsource = { path = "x" }\n[bad.splits.s]\nprotocol = "weekly"',
            "unknown protocol",
        ),
        (
            'format = "csv"\nsource = { path = "x" }\n[bad.splits.s]\nprotocol = "temporal"',
            "exactly one of",
        ),
        (
            'format = "csv"\nsource = { path = "absent.csv" }\n[bad.splits.s]\nprotocol = "random"',
            "does not exist",
        ),
    ],
)
def test_malformed_registry_is_a_one_line_error(tmp_path, home, body, message):
    reg = registry(tmp_path, "[bad]\n" + body + "\n")
    with pytest.raises((ConfigError, DataError)) as info:
        prepare("bad", home=home, registry_file=reg)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_bad_filter_and_empty_truth(tmp_path, home):
    reg = own_csv(tmp_path, extra='positive = "stars >= banana"')
    with pytest.raises(ConfigError, match=r"\[mine\] positive: unknown column 'banana'"):
        prepare("mine", home=home, registry_file=reg)
    reg = own_csv(tmp_path, extra='positive = "stars > 99"')
    with pytest.raises(DataError, match="leave no interactions"):
        prepare("mine", home=home, registry_file=reg)


def test_user_registry_overrides_shipped_entry(tmp_path, home, monkeypatch):
    reg = registry(
        tmp_path,
        """
[synthetic-small]
format = "synthetic"
params = { n_users = 50, n_items = 20, n_interactions = 400, days = 30, seed = 3 }
  [synthetic-small.splits.temporal]
  protocol = "temporal"
  days = 5
""",
    )
    monkeypatch.setenv("HARNESS_DATASETS", str(reg))
    meta = prepare("synthetic-small", home=home)
    assert meta["info"]["users"] <= 50


def test_fingerprint_stable_and_prepare_reuses(home):
    a = prepare("synthetic-small", home=home)
    b = prepare("synthetic-small", home=home)
    assert a["fingerprint"] == b["fingerprint"] and a["created_at"] == b["created_at"]
    c = prepare("synthetic-small", home=home, force=True)
    assert c["fingerprint"] == a["fingerprint"] and c["created_at"] > a["created_at"]
    d = prepare("synthetic-small", home=home, split="leave-last")
    assert d["fingerprint"] != a["fingerprint"]
    assert [(m["split"], m["is_default"]) for m in list_splits(home)] == [
        ("leave-last", False),
        ("temporal", True),
    ]
    assert split_meta(home, "synthetic-small")["split"] == "temporal"


def test_split_note_is_not_fingerprinted(tmp_path, home):
    body = """
[synthetic-small]
format = "synthetic"
params = { n_users = 50, n_items = 20, n_interactions = 400, days = 30, seed = 3 }
  [synthetic-small.splits.temporal]
  protocol = "temporal"
  days = 5
"""
    plain = prepare("synthetic-small", home=home, registry_file=registry(tmp_path, body))
    noted = prepare(
        "synthetic-small",
        home=tmp_path / "h2",
        registry_file=registry(tmp_path, body + '  note = "why"\n'),
    )
    assert noted["fingerprint"] == plain["fingerprint"] and noted["protocol"]["note"] == "why"


def test_unprepared_split_tells_what_to_run(home):
    with pytest.raises(NotFoundError, match="harness data prepare ml-latest-small"):
        load_split(home, "ml-latest-small")


def test_prepare_from_file_url_through_registry(tmp_path, home):
    import hashlib

    archive = tmp_path / "ml.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr(
            "ml/ratings.csv",
            "userId,movieId,rating,timestamp\n1,1,5,1\n1,2,5,2\n2,1,5,3\n2,3,4,4\n",
        )
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    reg = registry(
        tmp_path,
        f"""
[dl]
format = "movielens-latest"
source = {{ url = "{archive.as_uri()}", sha256 = "{digest}" }}
  [dl.splits.t]
  protocol = "temporal"
  quantile = 0.7
""",
    )
    meta = prepare("dl", home=home, registry_file=reg)
    # cutoff = 3rd of 4 timestamps: user 2's two ratings are the truth, user 2 is cold
    assert meta["info"]["truth_rows"] == 2 and meta["info"]["cold_users"] == 1
    bad = registry(tmp_path, reg.read_text().replace(digest, "f" * 64).replace("[dl", "[dl2"))
    with pytest.raises(FetchError, match=r"ml\.zip: sha256"):
        prepare("dl2", home=home, registry_file=bad)


def test_ratio_split_hand_computed(tmp_path, home):
    # user 1: 5 interactions -> floor(5 * 0.4) = 2 latest; user 2: 2 -> floor(0.8) = 0 -> at least 1
    (tmp_path / "log.csv").write_text("u,i,t\n1,a,1\n1,b,2\n1,c,3\n1,d,4\n1,e,5\n2,a,1\n2,b,2\n")
    reg = registry(
        tmp_path,
        """
[r]
format = "csv"
source = { path = "log.csv" }
columns = { user_id = "u", item_id = "i", timestamp = "t" }
  [r.splits.s]
  protocol = "ratio"
  test_ratio = 0.4
""",
    )
    prepare("r", home=home, registry_file=reg)
    assert sorted(load_split(home, "r").truth.rows()) == [(1, "d"), (1, "e"), (2, "b")]


def test_synthetic_is_seeded_and_kion_shaped():
    from harness.datasets.synthetic import generate

    a = generate(n_users=300, n_items=50, n_interactions=3000, seed=5)
    b = generate(n_users=300, n_items=50, n_interactions=3000, seed=5)
    assert all(x.equals(y) for x, y in zip(a, b))
    inter, users, items = a
    assert inter.columns == ["user_id", "item_id", "last_watch_dt", "total_dur", "watched_pct"]
    assert users.columns == ["user_id", "age", "income", "sex", "kids_flg"]
    assert {
        "content_type",
        "title",
        "release_year",
        "genres",
        "countries",
        "for_kids",
        "age_rating",
        "studios",
        "directors",
        "actors",
    } <= set(items.columns)
    # at most the asked count: repeated (user, item) draws collapse into one row
    assert 1000 < inter.height <= 3000 and inter.select("user_id", "item_id").is_unique().all()
    counts = inter["item_id"].value_counts()["count"].sort(descending=True)
    assert counts[0] > 5 * counts.median()  # a few items dominate: power-law popularity
