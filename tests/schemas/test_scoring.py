import pytest

from schemas.scoring import gad7_severity, gad7_total, phq9_item9, phq9_severity, phq9_total


@pytest.mark.parametrize(
    "total,band",
    [
        (0, "minimal"),
        (4, "minimal"),
        (5, "mild"),
        (9, "mild"),
        (10, "moderate"),
        (14, "moderate"),
        (15, "moderately_severe"),
        (19, "moderately_severe"),
        (20, "severe"),
        (27, "severe"),
    ],
)
def test_phq9_bands(total, band):
    assert phq9_severity(total) == band


@pytest.mark.parametrize(
    "total,band",
    [
        (0, "minimal"),
        (4, "minimal"),
        (5, "mild"),
        (9, "mild"),
        (10, "moderate"),
        (14, "moderate"),
        (15, "severe"),
        (21, "severe"),
    ],
)
def test_gad7_bands(total, band):
    assert gad7_severity(total) == band


def test_totals_and_item9():
    items = [3, 3, 3, 3, 3, 3, 3, 3, 2]
    assert phq9_total(items) == 26 and phq9_item9(items) == 2
    assert phq9_item9([0] * 8 + [1]) == 1 and phq9_item9([1] * 8 + [0]) == 0
    assert gad7_total([1, 2, 3, 0, 1, 2, 3]) == 12


@pytest.mark.parametrize("bad", [[1] * 8, [1] * 10, [4] + [0] * 8, [-1] + [0] * 8])
def test_phq9_rejects_impossible_items(bad):
    with pytest.raises(ValueError, match="PHQ-9"):
        phq9_total(bad)


@pytest.mark.parametrize("fn,total", [(phq9_severity, 28), (phq9_severity, -1), (gad7_severity, 22)])
def test_severity_rejects_impossible_totals(fn, total):
    with pytest.raises(ValueError):
        fn(total)
