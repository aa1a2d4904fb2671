"""The study registry: discovery, the haeuser2009 dataset, and every validation message."""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import fibrosim as fs
from fibrosim.studies import StudyDataError

BAD = Path(__file__).parent / "data" / "bad_studies"
OUTCOMES = ("pain", "fatigue", "sleep", "mood", "qol")


# --- discovery -------------------------------------------------------------------------------


def test_list_datasets_finds_haeuser2009() -> None:
    names = fs.studies.list_datasets()
    assert "haeuser2009" in names
    assert names == sorted(names)


def test_studies_dir_defaults_to_the_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FIBROSIM_STUDIES", raising=False)
    assert fs.studies.studies_dir() == Path(fs.studies.__file__).resolve().parent.parent / "studies"


def test_env_var_points_to_another_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIBROSIM_STUDIES", str(BAD))
    assert fs.studies.studies_dir() == BAD
    assert "good_arms" in fs.studies.list_datasets()
    assert "haeuser2009" not in fs.studies.list_datasets()
    assert len(fs.studies.load("good_arms")) == 3


def test_env_var_to_missing_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FIBROSIM_STUDIES", str(tmp_path / "nowhere"))
    with pytest.raises(
        StudyDataError,
        match=r"nowhere: 1 problem, nothing was loaded:\n  FIBROSIM_STUDIES names a folder that",
    ):
        fs.studies.list_datasets()


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(StudyDataError, match=r"unknown dataset 'haeuser2090'; known datasets: .*"):
        fs.studies.load("haeuser2090")
    with pytest.raises(StudyDataError) as info:
        fs.studies.load("haeuser2090")
    assert "haeuser2009" in str(info.value)


def test_duplicate_stems_are_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        shutil.copy(BAD / "good_arms.csv", tmp_path / sub / "same.csv")
    monkeypatch.setenv("FIBROSIM_STUDIES", str(tmp_path))
    with pytest.raises(
        StudyDataError, match=r"(?s)b/same\.csv: .*name 'same' is also used by .*a/same\.csv"
    ):
        fs.studies.list_datasets()


def test_load_by_path_str_or_toml() -> None:
    by_path = fs.studies.load(BAD / "good_arms.csv")
    by_str = fs.studies.load(str(BAD / "good_arms.csv"))
    by_toml = fs.studies.load(BAD / "good_arms.toml")
    pd.testing.assert_frame_equal(by_path, by_str)
    pd.testing.assert_frame_equal(by_path, by_toml)
    assert by_path.attrs["dataset"] == "good_arms"
    assert by_path.attrs["kind"] == "arms"


def test_missing_data_file() -> None:
    with pytest.raises(StudyDataError, match=r"nothere\.csv: 1 problem.*\n  data file not found"):
        fs.studies.load(BAD / "nothere.csv")


@pytest.mark.parametrize("name", fs.studies.list_datasets())
def test_every_shipped_dataset_loads(name: str) -> None:
    df = fs.studies.load(name)
    assert len(df) > 0
    assert df.attrs["dataset"] == name


# --- haeuser2009 -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def haeuser() -> pd.DataFrame:
    return fs.studies.load("haeuser2009")


def test_haeuser2009_shape_and_types(haeuser: pd.DataFrame) -> None:
    # 71 rows, as in metadat's data-raw file (the evidence notes' "72" is a miscount)
    assert len(haeuser) == 71
    counts = haeuser["outcome"].value_counts()
    assert counts.to_dict() == {"pain": 22, "fatigue": 14, "sleep": 13, "qol": 12, "mood": 10}
    assert haeuser["n_t"].dtype == np.int64 and haeuser["n_c"].dtype == np.int64
    assert haeuser["mean_t"].dtype == np.float64 and haeuser["sd_c"].dtype == np.float64
    assert haeuser["study"].nunique() == 18  # 18 RCTs (abstract)
    assert set(haeuser["control"]) == {"placebo"}
    assert set(haeuser["verification"]) == {"V2"}
    assert not haeuser["derived"].any()
    assert haeuser["source"].str.startswith("doi:10.1001/jama.2008.944 Figure ").all()
    meta = haeuser.attrs["metadata"]
    assert meta["doi"] == "10.1001/jama.2008.944"
    assert all(meta["outcomes"][o]["lower_is_better"] for o in OUTCOMES)


def test_haeuser2009_documented_corrections(haeuser: pd.DataFrame) -> None:
    # metadat's two corrections of the article's typos (dat.haeuser2009 help page, Note)
    heymann = haeuser[(haeuser.study == "Heymann 2001") & (haeuser.intervention == "nortriptyline")]
    assert heymann["mean_t"].tolist() == [48.78]
    hannonen = haeuser[(haeuser.study == "Hannonen 1998") & (haeuser.outcome == "sleep")]
    assert sorted(hannonen["n_t"]) == [30, 32]


def test_haeuser2009_shared_controls_agree(haeuser: pd.DataFrame) -> None:
    # rows that share a control arm must carry identical control summaries: a transcription check
    per_arm = haeuser.groupby(["study", "arm_c", "outcome"])[["n_c", "mean_c", "sd_c"]].nunique()
    assert (per_arm == 1).all().all()
    shared = haeuser.groupby(["study", "arm_c", "outcome"]).size()
    assert (shared > 1).sum() == 16  # Goldenberg, Hannonen, Heymann, Arnold 2005, Russell 2008


def _pooled_by_outcome(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """yi, vi of every outcome as one NaN-padded batch (outcomes x studies)."""
    es = fs.effects.smd(df.mean_t, df.sd_t, df.n_t, df.mean_c, df.sd_c, df.n_c)
    k_max = int(df["outcome"].value_counts().max())
    yi = np.full((len(OUTCOMES), k_max), np.nan)
    vi = np.full((len(OUTCOMES), k_max), np.nan)
    for i, outcome in enumerate(OUTCOMES):
        here = (df["outcome"] == outcome).to_numpy()
        yi[i, : here.sum()] = es.yi[here]
        vi[i, : here.sum()] = es.vi[here]
    return yi, vi


@pytest.mark.validation
def test_haeuser2009_reproduces_the_published_pooled_smds(haeuser: pd.DataFrame) -> None:
    # Häuser et al. JAMA 2009;301(2):198-209, abstract p. 198: pain -0.43 [-0.55, -0.30],
    # fatigue -0.13 [-0.26, -0.01], sleep -0.32 [-0.46, -0.18], mood -0.26 [-0.39, -0.12]
    # (stored in the dataset's [published] metadata with their source). Hedges' g,
    # drug minus placebo, DerSimonian-Laird random effects, 95% Wald CI.
    published = haeuser.attrs["metadata"]["published"]
    yi, vi = _pooled_by_outcome(haeuser)
    res = fs.meta.random_effects(yi, vi, method="DL")
    for i, outcome in enumerate(OUTCOMES[:4]):
        pub = published[outcome]
        assert res.k[i] == pub["k"]
        # the article prints 2 decimals: a faithful recomputation rounds to the printed value,
        # i.e. lies within half a unit of the last printed digit (0.005)
        assert res.estimate[i] == pytest.approx(pub["smd"], abs=0.005)
        assert res.ci_low[i] == pytest.approx(pub["ci"][0], abs=0.005)
        assert res.ci_high[i] == pytest.approx(pub["ci"][1], abs=0.005)


@pytest.mark.validation
def test_haeuser2009_published_hrqol_used_the_uncorrected_mean(haeuser: pd.DataFrame) -> None:
    # The printed HRQOL result, -0.31 [-0.42, -0.20], is reproduced with the article's 49.78 for
    # Heymann 2001 nortriptyline, not with metadat's corrected 48.78 (see transcription notes).
    pub = haeuser.attrs["metadata"]["published"]["qol"]
    qol = haeuser[haeuser["outcome"] == "qol"].copy()

    def pooled(frame: pd.DataFrame) -> tuple[float, float, float]:
        es = fs.effects.smd(
            frame.mean_t, frame.sd_t, frame.n_t, frame.mean_c, frame.sd_c, frame.n_c
        )
        r = fs.meta.random_effects(es.yi, es.vi, method="DL")
        return float(r.estimate), float(r.ci_low), float(r.ci_high)

    def matches(result: tuple[float, float, float]) -> bool:
        # same half-unit-of-the-last-printed-digit rule as above
        printed = (pub["smd"], *pub["ci"])
        return all(abs(a - b) <= 0.005 for a, b in zip(result, printed, strict=True))

    assert not matches(pooled(qol))
    typo = (qol["study"] == "Heymann 2001") & (qol["intervention"] == "nortriptyline")
    qol.loc[typo, "mean_t"] = 49.78
    assert matches(pooled(qol))


# --- valid fixtures of the other kinds -------------------------------------------------------


def test_effects_kind_derives_yi_and_vi() -> None:
    df = fs.studies.load(BAD / "good_effects.csv")
    z95 = stats.norm.ppf(0.975)
    z90 = stats.norm.ppf(0.95)
    # OR 2.5 [1.2, 5.2]: log scale, SE from the CI; MD -0.9 (SE 0.45); HR 0.7 (SE of the log
    # 0.12); SMD -0.41 [-0.80, -0.02] at ci_level 0.9
    expected_yi = [math.log(2.5), -0.9, math.log(0.7), -0.41]
    expected_vi = [
        ((math.log(5.2) - math.log(1.2)) / (2 * z95)) ** 2,
        0.45**2,
        0.12**2,
        ((-0.02 - -0.80) / (2 * z90)) ** 2,
    ]
    # the loader does the same floating-point operations; 1e-14 allows for their order
    np.testing.assert_allclose(df["yi"], expected_yi, rtol=1e-14)
    np.testing.assert_allclose(df["vi"], expected_vi, rtol=1e-14)
    np.testing.assert_array_equal(df["ci_level"], [0.95, 0.95, 0.95, 0.9])


def test_pooled_kind_flags_computed_rows() -> None:
    df = fs.studies.load(BAD / "good_pooled.csv")
    assert df["derived"].tolist() == [False, True]
    assert df["k"].dtype == "Int64"
    assert df["k"].isna().tolist() == [False, True]
    assert df["i2"].isna().tolist() == [False, True]


def test_table_kind_uses_the_declared_schema() -> None:
    df = fs.studies.load(BAD / "good_table.csv")
    assert df.columns.tolist() == [
        "dataset", "setting", "mu", "k", "flag", "source", "verification", "derived",
    ]  # fmt: skip
    assert df["mu"].dtype == np.float64
    assert df["k"].dtype == "Int64" and df["k"].isna().tolist() == [True, False]
    assert df["flag"].dtype == "boolean" and df["flag"].tolist() == [True, False]


# --- bad input: one fixture per problem, every message pinned --------------------------------

# (fixture stem, file named in the message, pattern of the one problem it reports)
CASES = [
    ("negative_sd", "negative_sd.csv", r"row 3, column 'sd_t': must be > 0; got '-2\.4'"),
    ("zero_sd", "zero_sd.csv", r"row 4, column 'sd_c': must be > 0; got '0'"),
    ("n_below_two", "n_below_two.csv", r"row 2, column 'n_t': must be >= 2; got '1'"),
    ("non_integer_n", "non_integer_n.csv",
     r"row 3, column 'n_c': must be a whole number; got '30\.5'"),
    ("nan_cell", "nan_cell.csv",
     r"row 2, column 'mean_t': must be a finite number \(no NaN or Inf\); got 'NaN'"),
    ("inf_cell", "inf_cell.csv",
     r"row 4, column 'sd_t': must be a finite number \(no NaN or Inf\); got 'inf'"),
    ("empty_cell", "empty_cell.csv", r"row 3, column 'mean_c': empty cell \(a value is required\)"),
    ("text_in_number", "text_in_number.csv",
     r"row 2, column 'sd_c': must be a number; got '2\.2 \(SE\)'"),
    ("events_exceed_n", "events_exceed_n.csv",
     r"row 3, column 'events_t': more events than participants \(n_t = 30\); got 31"),
    ("missing_column", "missing_column.csv", r"row 1 \(header\): missing required column 'sd_c'"),
    ("unknown_column", "unknown_column.csv",
     r"row 1 \(header\), column 'sd_pooled': unknown column for kind 'arms'; allowed: study, "),
    ("pooled_with_trial_columns", "pooled_with_trial_columns.csv",
     r"row 1 \(header\), column 'n_t': unknown column for kind 'pooled'"),
    ("outside_scale", "outside_scale.csv",
     r"row 4, column 'mean_t': outside the range of scale 'nrs', \[0, 10\]; got 13\.9"),
    ("change_outside_scale", "change_outside_scale.csv",
     r"row 3, column 'mean_c': outside the range of scale 'nrs', \[-10, 10\] for a change; "
     r"got -11\.5"),
    ("sd_too_large", "sd_too_large.csv",
     r"row 2, column 'sd_t': larger than any SD possible on scale 'nrs' \(at most 5\.13 for this "
     r"n\); got 7"),
    ("duplicate_rows", "duplicate_rows.csv",
     r"row 4: duplicate of row 2 \(same study='Alpha 2001', intervention='drug', "
     r"control='placebo', outcome='pain', timepoint='week 8'\)"),
    ("undeclared_outcome", "undeclared_outcome.csv",
     r"row 3, column 'outcome': not declared under \[outcomes\] in the metadata \(declared: "
     r"pain\); got 'fatigue'"),
    ("bad_design", "bad_design.csv",
     r"row 2, column 'design': must be one of parallel, crossover; got 'cluster'"),
    ("verification_u", "verification_u.csv",
     r"row 3, column 'verification': code U marks an unverified number, and unverified numbers "
     r"are not allowed: .*; got 'U'"),
    ("verification_bad", "verification_bad.csv",
     r"row 2, column 'verification': must be one of V1, V2, C; got 'V3'"),
    ("ragged_row", "ragged_row.csv", r"row 3: has 17 cells, the header has 16"),
    ("se_and_ci", "se_and_ci.csv",
     r"row 2, column 'se': give either se or ci_low/ci_high, not both; got 0\.45"),
    ("estimate_outside_ci", "estimate_outside_ci.csv",
     r"row 2, column 'estimate': must lie within \[ci_low, ci_high\]; got 0\.5"),
    ("table_bad_bool", "table_bad_bool.csv",
     r"row 2, column 'flag': must be true or false; got 'maybe'"),
    ("missing_metadata", "missing_metadata.csv",
     r"metadata file missing_metadata\.toml not found beside the data file"),
    ("toml_outcome_direction", "toml_outcome_direction.toml",
     r"outcomes\.pain needs 'lower_is_better' \(true or false\)"),
    ("toml_syntax", "toml_syntax.toml", r"not valid TOML: Invalid value \(at line 1, column 8\)"),
    ("table_undeclared_schema", "table_undeclared_schema.toml",
     r"columns\.setting must be a table with dtype 'str', 'int', 'float' or 'bool'"),
]  # fmt: skip


@pytest.mark.parametrize(("stem", "file", "pattern"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_message(stem: str, file: str, pattern: str) -> None:
    with pytest.raises(StudyDataError) as info:
        fs.studies.load(BAD / f"{stem}.csv")
    err = info.value
    assert isinstance(err, ValueError)
    assert Path(err.path).name == file
    message = str(err)
    assert message.startswith(f"{BAD / file}: ")
    assert "nothing was loaded" in message
    assert len(err.problems) == 1 + (stem == "table_undeclared_schema"), err.problems
    assert re.search(pattern, err.problems[0]), err.problems[0]
    assert re.search(pattern, message)


def test_metadata_missing_required_keys() -> None:
    with pytest.raises(StudyDataError) as info:
        fs.studies.load(BAD / "toml_missing_keys.csv")
    assert info.value.problems == (
        "missing required key 'citation'",
        "missing required key 'licence'",
    )
    assert str(info.value).startswith(f"{BAD / 'toml_missing_keys.toml'}: 2 problems")


def _write(tmp_path: Path, stem: str, rows: list[str], toml_from: str = "good_arms") -> Path:
    (tmp_path / f"{stem}.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    shutil.copy(BAD / f"{toml_from}.toml", tmp_path / f"{stem}.toml")
    return tmp_path / f"{stem}.csv"


def _good_rows() -> list[str]:
    return (BAD / "good_arms.csv").read_text(encoding="utf-8").splitlines()


def test_every_problem_is_listed_in_row_order(tmp_path: Path) -> None:
    header, r2, r3, r4 = _good_rows()
    bad = _write(
        tmp_path,
        "many",
        [
            header,
            r2.replace(",2.2,", ",-2.2,"),
            r3,
            r4.replace(",44,", ",1,").replace("45,", "4x,"),
        ],
    )
    with pytest.raises(StudyDataError) as info:
        fs.studies.load(bad)
    assert [p.split(":")[0] for p in info.value.problems] == [
        "row 2, column 'sd_c'",
        "row 4, column 'n_t'",
        "row 4, column 'n_c'",
    ]
    assert str(info.value).startswith(f"{bad}: 3 problems, nothing was loaded:\n  row 2,")


def test_long_lists_are_cut_after_twenty(tmp_path: Path) -> None:
    header, r2, *_ = _good_rows()
    rows = [header] + [
        r2.replace("Alpha 2001", f"Study {i}").replace(",2.0,", ",0,") for i in range(25)
    ]
    with pytest.raises(StudyDataError, match=r"(?s)25 problems.*\n  \.\.\. and 5 more$") as info:
        fs.studies.load(_write(tmp_path, "long", rows))
    assert len(info.value.problems) == 25


def test_blank_lines_are_skipped_but_keep_their_row_number(tmp_path: Path) -> None:
    header, r2, r3, r4 = _good_rows()
    path = _write(tmp_path, "blank", [header, r2, "", r3, r4.replace(",2.1,", ",-2.1,"), ""])
    with pytest.raises(StudyDataError, match=r"row 5, column 'sd_t': must be > 0; got '-2\.1'"):
        fs.studies.load(path)
    ok = _write(tmp_path, "blank_ok", [header, r2, "", r3, r4, "", ""])
    assert len(fs.studies.load(ok)) == 3


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(
        StudyDataError, match=r"row 1 \(header\): the file is empty or has no header"
    ):
        fs.studies.load(_write(tmp_path, "empty", []))
    with pytest.raises(StudyDataError, match=r"empty_rows\.csv: 1 problem.*\n  no data rows"):
        fs.studies.load(_write(tmp_path, "empty_rows", [_good_rows()[0]]))


def test_table_column_options_are_checked(tmp_path: Path) -> None:
    toml = (BAD / "good_table.toml").read_text(encoding="utf-8")
    (tmp_path / "opts.toml").write_text(
        toml.replace("maximum = 5", 'maximum = "5"').replace("nullable = true", "nullable = 1"),
        encoding="utf-8",
    )
    shutil.copy(BAD / "good_table.csv", tmp_path / "opts.csv")
    with pytest.raises(StudyDataError) as info:
        fs.studies.load(tmp_path / "opts.csv")
    assert info.value.problems == (
        "columns.mu.maximum must be a number; got '5'",
        "columns.k.nullable must be true or false",
    )


def test_hidden_folders_are_not_searched(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".ipynb_checkpoints").mkdir()
    shutil.copy(BAD / "good_arms.csv", tmp_path / ".ipynb_checkpoints" / "good_arms.csv")
    shutil.copy(BAD / "good_arms.csv", tmp_path / "good_arms.csv")
    monkeypatch.setenv("FIBROSIM_STUDIES", str(tmp_path))
    assert fs.studies.list_datasets() == ["good_arms"]


def test_packaged_copy_is_used_outside_a_checkout(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # an installed wheel: site-packages/fibrosim/_studies, and no pyproject.toml beside the package
    package = tmp_path / "site-packages" / "fibrosim"
    (package / "_studies").mkdir(parents=True)
    (tmp_path / "site-packages" / "studies").mkdir()  # an unrelated folder must not be taken
    monkeypatch.delenv("FIBROSIM_STUDIES", raising=False)
    monkeypatch.setattr(fs.studies, "__file__", str(package / "studies.py"))
    assert fs.studies.studies_dir() == package / "_studies"
    (package / "_studies").rmdir()
    with pytest.raises(StudyDataError, match=r"no studies folder: set FIBROSIM_STUDIES"):
        fs.studies.studies_dir()
