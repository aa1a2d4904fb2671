"""Shared pytest configuration: headless plotting and the reference-data folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib
import pytest

matplotlib.use("Agg")  # tests run without a display

DATA_DIR = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Folder of pinned reference values (tests/data)."""
    return DATA_DIR


def load_reference(name: str) -> Any:
    """Read a pinned reference JSON from tests/data."""
    with (DATA_DIR / name).open(encoding="utf-8") as fh:
        return json.load(fh)
