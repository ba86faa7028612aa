"""Exact frame rates: the float rates of cameras and containers become the fractions they stand for."""

from __future__ import annotations

from fractions import Fraction

import pytest

from eigencam_live.video import as_rate


@pytest.mark.parametrize(
    ("value", "rate"),
    [
        (29.97, Fraction(30000, 1001)),
        (29.97002997, Fraction(30000, 1001)),
        (23.976, Fraction(24000, 1001)),
        (59.94, Fraction(60000, 1001)),
        (25.0, Fraction(25)),
        (30, Fraction(30)),
        (12.5, Fraction(25, 2)),
        (Fraction(7, 3), Fraction(7, 3)),
    ],
)
def test_as_rate_is_exact(value, rate):
    assert as_rate(value) == rate
