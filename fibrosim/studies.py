"""The study registry: load and validate the cited datasets in ``studies/``.

Every dataset is a CSV in long format with a TOML metadata file of the same stem beside it. The
column schema of each dataset *kind* is declared once, as data, in :data:`KINDS` (defined in
:mod:`fibrosim.studies_schema` and re-exported here with the other schema names); this module
finds datasets and checks them.  :func:`load` checks a file against the schema in one pass and
either returns a tidy :class:`pandas.DataFrame` (the metadata in ``df.attrs``) or raises a single
:class:`StudyDataError` that lists every problem by file, spreadsheet row (the header is row 1,
the first data row is row 2), column and value.  Nothing is ever loaded partially.

The format is described for people adding datasets in ``studies/README.md``.
"""

from __future__ import annotations

import csv
import os
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import stats

from fibrosim.studies_schema import (
    KINDS,
    MEASURES,
    RATIO_MEASURES,
    VERIFICATION_CODES,
    Column,
    Kind,
)

__all__ = [
    "KINDS",
    "MEASURES",
    "RATIO_MEASURES",
    "VERIFICATION_CODES",
    "Column",
    "Kind",
    "StudyDataError",
    "list_datasets",
    "load",
    "studies_dir",
]

_MAX_LISTED = 20  # problems shown in one message; the rest are counted
_TRUE = frozenset({"true", "yes", "1"})
_FALSE = frozenset({"false", "no", "0"})
# metadata rules: kinds whose rows are trials (outcomes and scales declared), keys every file needs
_TRIAL_KINDS = frozenset({"arms", "binary", "effects"})
_META_REQUIRED = ("kind", "title", "citation", "licence", "transcription")


class StudyDataError(ValueError):
    """A dataset in ``studies/`` (or given by path) failed validation.

    Attributes
    ----------
    path : str
        The file at fault.
    problems : tuple of str
        One entry per problem: "row R, column 'C': what is wrong; got 'value'".
    """

    def __init__(self, path: Path | str, problems: Sequence[str]) -> None:
        self.path = str(path)
        self.problems = tuple(problems)
        shown = [f"  {p}" for p in self.problems[:_MAX_LISTED]]
        if len(self.problems) > _MAX_LISTED:
            shown.append(f"  ... and {len(self.problems) - _MAX_LISTED} more")
        n = len(self.problems)
        noun = "problem" if n == 1 else "problems"
        super().__init__(f"{self.path}: {n} {noun}, nothing was loaded:\n" + "\n".join(shown))


# ---------------------------------------------------------------------------------------------
# Discovery


def studies_dir() -> Path:
    """The folder holding the datasets.

    In order: the ``FIBROSIM_STUDIES`` environment variable; the ``studies/`` folder of a source
    checkout (the package's parent folder, recognised by its ``pyproject.toml``); the copy
    packaged with a wheel, ``fibrosim/_studies``.

    Raises
    ------
    StudyDataError
        If ``FIBROSIM_STUDIES`` names a missing folder, or no folder is found.
    """
    env = os.environ.get("FIBROSIM_STUDIES")
    if env:
        path = Path(env)
        if not path.is_dir():
            raise StudyDataError(path, ["FIBROSIM_STUDIES names a folder that does not exist"])
        return path
    package = Path(__file__).resolve().parent
    checkout = package.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "studies").is_dir():
        return checkout / "studies"
    if (package / "_studies").is_dir():
        return package / "_studies"
    raise StudyDataError(package, ["no studies folder: set FIBROSIM_STUDIES to the studies/ path"])


def _discover(root: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(root.rglob("*.csv")):
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue  # editor and notebook folders (.ipynb_checkpoints) are not datasets
        if path.stem in found:
            raise StudyDataError(
                path,
                [
                    f"dataset name {path.stem!r} is also used by {found[path.stem]}; stems must "
                    "be unique across the studies folder"
                ],
            )
        found[path.stem] = path
    return found


def list_datasets() -> list[str]:
    """Names (file stems) of every dataset under :func:`studies_dir`, searched recursively.

    Returns
    -------
    list of str
        Sorted dataset names, e.g. ``["haeuser2009", ...]``.

    Examples
    --------
    >>> import fibrosim as fs
    >>> "haeuser2009" in fs.studies.list_datasets()
    True
    """
    return sorted(_discover(studies_dir()))


def _resolve(name_or_path: str | os.PathLike[str]) -> tuple[str, Path, Path]:
    text = os.fspath(name_or_path)
    looks_like_path = isinstance(name_or_path, os.PathLike) or any(
        s in text for s in ("/", os.sep, ".csv", ".toml")
    )
    if looks_like_path:
        path = Path(text)
        csv_path = path.with_suffix(".csv")
        if not csv_path.is_file():
            raise StudyDataError(csv_path, ["data file not found"])
    else:
        known = _discover(studies_dir())
        if text not in known:
            listed = ", ".join(sorted(known)) or "(none)"
            raise StudyDataError(
                studies_dir(), [f"unknown dataset {text!r}; known datasets: {listed}"]
            )
        csv_path = known[text]
    toml_path = csv_path.with_suffix(".toml")
    if not toml_path.is_file():
        raise StudyDataError(
            csv_path, [f"metadata file {toml_path.name} not found beside the data file"]
        )
    return csv_path.stem, csv_path, toml_path


# ---------------------------------------------------------------------------------------------
# Metadata


def _read_metadata(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            meta = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise StudyDataError(path, [f"not valid TOML: {exc}"]) from exc
    problems = [f"missing required key {key!r}" for key in _META_REQUIRED if key not in meta]
    if "doi" not in meta and "url" not in meta:
        problems.append("missing required key 'doi' (or 'url' when the source has no DOI)")
    kind = meta.get("kind")
    if "kind" in meta and kind not in KINDS:
        problems.append(f"key 'kind' must be one of {', '.join(KINDS)}; got {kind!r}")
    notes = meta.get("transcription", {})
    if "transcription" in meta and not (
        isinstance(notes, dict) and isinstance(notes.get("notes"), list) and notes["notes"]
    ):
        problems.append("key 'transcription' must be a table with a non-empty list 'notes'")
    if kind in _TRIAL_KINDS or kind == "pooled":
        problems += _check_outcomes(meta)
    if kind in _TRIAL_KINDS:
        problems += _check_scales(meta)
    if kind == "table":
        problems += _check_declared_columns(meta)
    if problems:
        raise StudyDataError(path, problems)
    return meta


def _check_outcomes(meta: Mapping[str, Any]) -> list[str]:
    outcomes = meta.get("outcomes")
    if not isinstance(outcomes, dict) or not outcomes:
        return ["missing required key 'outcomes' (one table per outcome)"]
    problems = []
    for name, spec in outcomes.items():
        if not isinstance(spec, dict):
            problems.append(f"outcomes.{name} must be a table")
            continue
        if not isinstance(spec.get("higher_means"), str):
            problems.append(f"outcomes.{name} needs 'higher_means' (text)")
        if not isinstance(spec.get("lower_is_better"), bool):
            problems.append(f"outcomes.{name} needs 'lower_is_better' (true or false)")
    return problems


def _check_scales(meta: Mapping[str, Any]) -> list[str]:
    scales = meta.get("scales")
    if not isinstance(scales, dict) or not scales:
        return ["missing required key 'scales' (one table per scale)"]
    problems = []
    for name, spec in scales.items():
        if not isinstance(spec, dict) or not isinstance(spec.get("description"), str):
            problems.append(f"scales.{name} needs 'description' (text)")
            continue
        rng = spec.get("range")
        if rng is not None and not (
            isinstance(rng, list)
            and len(rng) == 2
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in rng)
            and rng[0] < rng[1]
        ):
            problems.append(f"scales.{name}.range must be [low, high] with low < high; got {rng!r}")
    return problems


def _check_declared_columns(meta: Mapping[str, Any]) -> list[str]:
    columns = meta.get("columns")
    if not isinstance(columns, dict) or not columns:
        return ["missing required key 'columns' (kind = 'table' declares its column schema)"]
    problems = []
    for name, spec in columns.items():
        if name in KINDS["table"].names:
            continue  # source, verification, notes: built in, a description here is harmless
        if not isinstance(spec, dict) or spec.get("dtype") not in ("str", "int", "float", "bool"):
            problems.append(
                f"columns.{name} must be a table with dtype 'str', 'int', 'float' or 'bool' "
                "and a description"
            )
        elif not isinstance(spec.get("description"), str):
            problems.append(f"columns.{name} needs 'description' (text)")
        else:
            problems += _check_column_options(name, spec)
    key = meta.get("key", [])
    if not (isinstance(key, list) and all(k in columns for k in key)):
        problems.append(f"key must list declared column names; got {key!r}")
    return problems


def _check_column_options(name: str, spec: Mapping[str, Any]) -> list[str]:
    problems = []
    for option in ("minimum", "maximum"):
        value = spec.get(option)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            problems.append(f"columns.{name}.{option} must be a number; got {value!r}")
    for option in ("nullable", "required"):
        if not isinstance(spec.get(option, False), bool):
            problems.append(f"columns.{name}.{option} must be true or false")
    choices = spec.get("choices", [])
    if not (isinstance(choices, list) and all(isinstance(c, str) for c in choices)):
        problems.append(f"columns.{name}.choices must be a list of strings; got {choices!r}")
    return problems


def _kind_for(meta: Mapping[str, Any]) -> Kind:
    base = KINDS[meta["kind"]]
    if base.name != "table":
        return base
    declared = tuple(
        Column(
            name,
            spec["dtype"],
            spec["description"],
            required=spec.get("required", True),
            nullable=spec.get("nullable", False),
            choices=tuple(spec.get("choices", ())),
            minimum=spec.get("minimum"),
            maximum=spec.get("maximum"),
        )
        for name, spec in meta["columns"].items()
        if name not in base.names
    )
    return Kind(base.name, base.description, declared + base.columns, tuple(meta.get("key", ())))


# ---------------------------------------------------------------------------------------------
# Data


def _read_rows(path: Path) -> tuple[list[str], list[int], list[list[str]]]:
    """Header, spreadsheet row numbers and cells of the non-blank data rows."""
    with path.open(newline="", encoding="utf-8-sig") as fh:
        records = list(csv.reader(fh))
    if not records or not any(c.strip() for c in records[0]):
        raise StudyDataError(path, ["row 1 (header): the file is empty or has no header"])
    header = [c.strip() for c in records[0]]
    numbers, rows, problems = [], [], []
    for number, cells in enumerate(records[1:], start=2):
        if not any(c.strip() for c in cells):
            continue  # blank lines (e.g. at the end of the file) are not data
        if len(cells) != len(header):
            problems.append(f"row {number}: has {len(cells)} cells, the header has {len(header)}")
        numbers.append(number)
        rows.append([c.strip() for c in cells])
    if problems:
        raise StudyDataError(path, problems)
    if not rows:
        raise StudyDataError(path, ["no data rows"])
    return header, numbers, rows


def _check_header(header: list[str], kind: Kind) -> list[str]:
    problems = []
    seen = set()
    for name in header:
        if name in seen:
            problems.append(f"row 1 (header), column {name!r}: appears twice")
        seen.add(name)
    allowed = ", ".join(kind.names)
    for name in header:
        if name not in kind.names:
            problems.append(
                f"row 1 (header), column {name!r}: unknown column for kind {kind.name!r}; "
                f"allowed: {allowed}"
            )
    for col in kind.columns:
        if col.required and col.name not in seen:
            problems.append(f"row 1 (header): missing required column {col.name!r}")
    return problems


def _parse(col: Column, raw: NDArray[np.str_], rows: NDArray[np.int_], out: list[str]) -> Any:
    """Typed values of one column; every bad cell is reported in ``out``."""
    empty = raw == ""

    def bad(mask: NDArray[np.bool_], what: str) -> None:
        out.extend(
            f"row {r}, column {col.name!r}: {what}; got {_show(v)}"
            for r, v in zip(rows[mask], raw[mask], strict=True)
        )

    if not col.nullable:
        out.extend(
            f"row {r}, column {col.name!r}: empty cell (a value is required)" for r in rows[empty]
        )
    if col.dtype == "str":
        if col.name == "verification":
            bad(
                raw == "U",
                "code U marks an unverified number, and unverified numbers are not "
                "allowed: check the number against its source (V1, V2 or C) or leave it out",
            )
            bad(~empty & (raw != "U") & ~np.isin(raw, col.choices), _choice_text(col))
        elif col.choices:
            bad(~empty & ~np.isin(raw, col.choices), _choice_text(col))
        return pd.array([None if e else v for e, v in zip(empty, raw, strict=True)], dtype="str")
    if col.dtype == "bool":
        low = np.char.lower(raw)
        is_true, is_false = np.isin(low, list(_TRUE)), np.isin(low, list(_FALSE))
        bad(~empty & ~is_true & ~is_false, "must be true or false")
        return pd.array(
            [None if e else bool(t) for e, t in zip(empty, is_true, strict=True)], dtype="boolean"
        )
    values = pd.to_numeric(pd.Series(raw), errors="coerce").to_numpy(dtype=np.float64)
    nonnum = ~empty & np.isnan(values) & ~np.isin(np.char.lower(raw), ["nan", "+nan", "-nan"])
    bad(nonnum, "must be a number")
    bad(~empty & ~nonnum & ~np.isfinite(values), "must be a finite number (no NaN or Inf)")
    ok = np.isfinite(values)
    if col.dtype == "int":
        bad(ok & (values != np.round(values)), "must be a whole number")
    if col.positive:
        bad(ok & (values <= 0), "must be > 0")
    if col.minimum is not None:
        bad(ok & (values < col.minimum), f"must be >= {col.minimum:g}")
    if col.maximum is not None:
        bad(ok & (values > col.maximum), f"must be <= {col.maximum:g}")
    if col.dtype == "int":
        # a bad cell has been reported; 0 only holds its place until the error is raised
        ints = np.where(ok, np.round(values), 0).astype(np.int64)
        if not col.nullable:
            return ints
        return pd.array([int(v) if k else None for k, v in zip(ok, ints, strict=True)], "Int64")
    return values


def _show(value: object) -> str:
    """A cell value as the message shows it: text quoted, numbers plain."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, str):
        return repr(value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def _choice_text(col: Column) -> str:
    return f"must be one of {', '.join(col.choices)}"


def _row_rules(
    kind: str, meta: Mapping[str, Any], data: Mapping[str, Any], rows: NDArray[np.int_]
) -> list[str]:
    """Checks across the cells of a row, run once every cell has parsed."""
    out: list[str] = []

    def bad(mask: NDArray[np.bool_], column: str, what: str) -> None:
        shown = np.asarray(data[column], dtype=object)
        out.extend(
            f"row {r}, column {column!r}: {what}; got {_show(v)}"
            for r, v in zip(rows[mask], shown[mask], strict=True)
        )

    for key in ("outcomes", "scales"):
        column = key[:-1]
        if column in data and key in meta:
            values = np.asarray(data[column], dtype=object)
            declared = list(meta[key])
            bad(
                ~np.isin(values, declared),
                column,
                f"not declared under [{key}] in the metadata (declared: {', '.join(declared)})",
            )
    if kind == "arms":
        out += _range_rules(meta, data, rows)
    if kind == "binary":
        for arm in ("t", "c"):
            events, n = np.asarray(data[f"events_{arm}"]), np.asarray(data[f"n_{arm}"])
            over = events > n
            out.extend(
                f"row {r}, column 'events_{arm}': more events than participants "
                f"(n_{arm} = {m}); got {e}"
                for r, e, m in zip(rows[over], events[over], n[over], strict=True)
            )
    if kind in ("effects", "pooled"):
        est, lo, hi = (
            np.asarray(data[c], dtype=np.float64) for c in ("estimate", "ci_low", "ci_high")
        )
        has_ci = ~np.isnan(lo) & ~np.isnan(hi)
        if kind == "effects":
            se = np.asarray(data["se"], dtype=np.float64)
            half = np.isnan(lo) != np.isnan(hi)
            bad(half, "ci_low", "give both ci_low and ci_high, or neither")
            bad(has_ci & ~np.isnan(se), "se", "give either se or ci_low/ci_high, not both")
            bad(~has_ci & ~half & np.isnan(se), "se", "empty: give se or ci_low/ci_high")
        with np.errstate(invalid="ignore"):
            bad(has_ci & ~(lo < hi), "ci_low", "must be below ci_high")
            bad(
                has_ci & (lo < hi) & ((est < lo) | (est > hi)),
                "estimate",
                "must lie within [ci_low, ci_high]",
            )
            ratio = np.isin(np.asarray(data["measure"], dtype=object), list(RATIO_MEASURES))
            for column, values in (("estimate", est), ("ci_low", lo)):
                bad(ratio & (values <= 0), column, "a ratio measure (OR, RR, HR, ROM) must be > 0")
    return out


def _range_rules(
    meta: Mapping[str, Any], data: Mapping[str, Any], rows: NDArray[np.int_]
) -> list[str]:
    """Arm means and SDs inside the declared range of their scale.

    A raw mean lies in [low, high]; a mean change in [-(high - low), high - low]. A variable on
    an interval of width w has SD at most w / 2 (Popoviciu), so a sample SD at most
    w / 2 * sqrt(n / (n - 1)); a change lies on an interval of width 2w.
    """
    out: list[str] = []
    scale = np.asarray(data["scale"], dtype=object)
    change = np.asarray(data["measure_type"], dtype=object) == "change"
    for name, spec in meta["scales"].items():
        if "range" not in spec:
            continue
        low, high = spec["range"]
        width = high - low
        here = scale == name
        for arm in ("t", "c"):
            mean = np.asarray(data[f"mean_{arm}"], dtype=np.float64)
            sd = np.asarray(data[f"sd_{arm}"], dtype=np.float64)
            n = np.asarray(data[f"n_{arm}"], dtype=np.float64)
            outside = here & np.where(change, np.abs(mean) > width, (mean < low) | (mean > high))
            for r, v, c in zip(rows[outside], mean[outside], change[outside], strict=True):
                span = f"[{-width:g}, {width:g}] for a change" if c else f"[{low:g}, {high:g}]"
                out.append(
                    f"row {r}, column 'mean_{arm}': outside the range of scale {name!r}, "
                    f"{span}; got {v:g}"
                )
            limit = np.where(change, width, width / 2) * np.sqrt(n / (n - 1))
            too_wide = here & (sd > limit)
            out.extend(
                f"row {r}, column 'sd_{arm}': larger than any SD possible on scale {name!r} "
                f"(at most {lim:.4g} for this n); got {v:g}"
                for r, v, lim in zip(rows[too_wide], sd[too_wide], limit[too_wide], strict=True)
            )
    return out


def _duplicates(
    kind: Kind, header: list[str], raw: Mapping[str, NDArray[np.str_]], rows: NDArray[np.int_]
) -> list[str]:
    key = [c for c in kind.key if c in header] or header
    frame = pd.DataFrame({c: raw[c] for c in key})
    dup = frame.duplicated(keep=False).to_numpy()
    if not dup.any():
        return []
    first: dict[tuple[str, ...], int] = {}
    out = []
    for r, named in zip(rows[dup], frame[dup].itertuples(index=False), strict=True):
        values = tuple(named)
        if values in first:
            shown = ", ".join(f"{c}={v!r}" for c, v in zip(key, values, strict=True))
            out.append(f"row {r}: duplicate of row {first[values]} (same {shown})")
        else:
            first[values] = int(r)
    return out


def _effect_scale(data: Mapping[str, Any]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``yi`` and ``vi`` of an ``effects`` dataset.

    Ratio measures (OR, RR, HR, ROM) are analysed on the log scale: ``yi = log(estimate)``, a
    given ``se`` is read as the SE of the log, and an interval gives
    ``se = (log(ci_high) - log(ci_low)) / (2 z)``. Other measures use the estimate as it is and
    ``se = (ci_high - ci_low) / (2 z)``; ``z`` is the ``(1 + ci_level) / 2`` normal quantile.
    """
    est, se, lo, hi = (
        np.asarray(data[c], dtype=np.float64) for c in ("estimate", "se", "ci_low", "ci_high")
    )
    level = np.asarray(data["ci_level"], dtype=np.float64)
    ratio = np.isin(np.asarray(data["measure"], dtype=object), list(RATIO_MEASURES))

    def on_scale(values: NDArray[np.float64]) -> NDArray[np.float64]:
        # log only where the measure is a ratio; the placeholder 1.0 keeps log() quiet elsewhere
        return np.where(ratio, np.log(np.where(ratio, values, 1.0)), values)

    yi, glo, ghi = on_scale(est), on_scale(lo), on_scale(hi)
    z = stats.norm.ppf((1.0 + level) / 2.0)
    se_used = np.where(np.isnan(se), (ghi - glo) / (2.0 * z), se)
    return yi, se_used**2


def load(name_or_path: str | os.PathLike[str]) -> pd.DataFrame:
    """Validate a dataset and return it as a tidy DataFrame.

    Parameters
    ----------
    name_or_path : str or path-like
        A dataset name from :func:`list_datasets` (e.g. ``"haeuser2009"``) or the path of its
        CSV (the TOML metadata must sit beside it with the same stem).

    Returns
    -------
    pandas.DataFrame
        One row per CSV data row, the declared columns in schema order with their types
        (``int64``/``Int64``, ``float64``, ``str``, ``boolean``), preceded by ``dataset``.
        Added columns: ``derived`` (``verification == "C"``) when ``verification`` is present;
        for ``effects``, ``ci_level`` (default 0.95), ``yi`` and ``vi`` (see Notes).
        ``df.attrs`` holds ``dataset``, ``kind``, ``path`` and ``metadata`` (the parsed TOML).

    Raises
    ------
    StudyDataError
        Unknown name (the message lists the known ones), missing metadata file, metadata
        without its required keys, or any bad cell: the message names the file, the
        spreadsheet row (header = row 1), the column and the bad value, for every problem.

    Notes
    -----
    For ``effects`` rows, ratio measures (OR, RR, HR, ROM) are put on the log scale:
    ``yi = log(estimate)``; ``se`` is read as the SE of the log; from an interval,
    ``se = (log(ci_high) - log(ci_low)) / (2 z)`` with ``z = Φ⁻¹((1 + ci_level) / 2)``. Other
    measures keep their scale. ``vi = se²``.

    Examples
    --------
    >>> import fibrosim as fs
    >>> df = fs.studies.load("haeuser2009")
    >>> df.attrs["kind"], len(df)
    ('arms', 71)
    """
    name, csv_path, toml_path = _resolve(name_or_path)
    meta = _read_metadata(toml_path)
    kind = _kind_for(meta)
    header, numbers, cells = _read_rows(csv_path)
    problems = _check_header(header, kind)
    if problems:
        raise StudyDataError(csv_path, problems)

    rows = np.asarray(numbers, dtype=np.int64)
    table = np.asarray(cells, dtype=np.str_).reshape(len(cells), len(header))
    raw = {c: table[:, i] for i, c in enumerate(header)}
    present = [c for c in kind.columns if c.name in raw]
    data: dict[str, Any] = {}
    for col in present:
        data[col.name] = _parse(col, raw[col.name], rows, problems)
    if not problems:
        if kind.name == "effects":
            data["ci_level"] = (
                np.where(np.isnan(data["ci_level"]), 0.95, data["ci_level"])
                if "ci_level" in data
                else np.full(len(rows), 0.95)
            )
        problems += _row_rules(kind.name, meta, data, rows)
    problems += _duplicates(kind, header, raw, rows)
    if problems:
        # report in spreadsheet order, so a reader can walk down the file
        problems.sort(key=_row_of)
        raise StudyDataError(csv_path, problems)

    frame = pd.DataFrame({"dataset": pd.array([name] * len(rows), dtype="str")})
    for col in present:
        frame[col.name] = data[col.name]
    if "verification" in frame:
        frame["derived"] = (frame["verification"] == "C").astype(bool)
    if kind.name == "effects":
        frame["ci_level"] = data["ci_level"]
        frame["yi"], frame["vi"] = _effect_scale(data)
    frame.attrs.update(
        {"dataset": name, "kind": kind.name, "path": str(csv_path), "metadata": meta}
    )
    return frame


def _row_of(problem: str) -> int:
    """Spreadsheet row a problem is about (0 for file-level problems).

    Sorting by it is stable, so the problems of one row keep their column order.
    """
    words = problem.split(",")[0].split(":")[0].split(" ")
    return int(words[1]) if len(words) > 1 and words[0] == "row" and words[1].isdigit() else 0
