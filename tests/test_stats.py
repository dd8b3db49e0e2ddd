import math

import pytest

from bench.core.stats import Summary, summarize


def test_percentiles_match_hand_computed_linear_interpolation() -> None:
    # 1..10: position of p is (n-1)·p = 9p, interpolated between neighbours.
    s = summarize([float(x) for x in range(1, 11)])
    assert s.n == 10
    assert s.p50 == pytest.approx(5.5)  # 1 + 4.5
    assert s.p90 == pytest.approx(9.1)  # 1 + 8.1
    assert s.p99 == pytest.approx(9.91)  # 1 + 8.91
    assert (s.min, s.max) == (1.0, 10.0)
    assert s.mean == pytest.approx(5.5)


def test_unsorted_input_gives_same_percentiles() -> None:
    s = summarize([4.0, 1.0, 3.0, 2.0])
    # position 0.5·3 = 1.5 -> 2.5; 0.9·3 = 2.7 -> 3.7; 0.99·3 = 2.97 -> 3.97
    assert (s.p50, s.p90, s.p99) == pytest.approx((2.5, 3.7, 3.97))


def test_stdev_is_sample_stdev_and_cv_is_relative() -> None:
    s = summarize([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0])
    # Sum of squared deviations from mean 5 is 32; ddof=1 -> 32/7.
    assert s.stdev == pytest.approx(math.sqrt(32 / 7))
    assert s.cv == pytest.approx(math.sqrt(32 / 7) / 5)


def test_single_sample_has_zero_spread() -> None:
    s = summarize([0.25])
    assert s == Summary(n=1, mean=0.25, stdev=0.0, min=0.25, max=0.25, p50=0.25, p90=0.25, p99=0.25, cv=0.0)


def test_zero_mean_cv_is_nan() -> None:
    assert math.isnan(summarize([-1.0, 1.0]).cv)


def test_empty_input_raises() -> None:
    with pytest.raises(ValueError, match="at least one sample"):
        summarize([])


def test_to_dict_round_trips() -> None:
    s = summarize([1.0, 2.0, 3.0])
    d = s.to_dict()
    assert set(d) == {"n", "mean", "stdev", "min", "max", "p50", "p90", "p99", "cv"}
    assert Summary(**d) == s
