"""Shared fixtures. The real wood data lives outside the repository; tests that need it skip without it."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WOOD_VSB = REPO.parent / "shared" / "data" / "wood_vsb256"


@pytest.fixture(scope="session")
def wood_vsb() -> Path:
    if not (WOOD_VSB / "train" / "good").is_dir():
        pytest.skip(f"real wood data not found at {WOOD_VSB} (it is not part of the repository)")
    return WOOD_VSB
