import math

import pytest

from lorabar import schedules


def test_values():
    assert schedules.constant()(0) == 1.0 and schedules.constant()(10**6) == 1.0
    lin = schedules.linear(10)
    assert [lin(t) for t in (0, 5, 10, 20)] == [1.0, 0.5, 0.0, 0.0]
    cos = schedules.cosine(10)
    assert cos(0) == 1.0
    assert cos(5) == pytest.approx(0.5)
    assert cos(10) == pytest.approx(0.0, abs=1e-15) and cos(30) == cos(10)
    assert cos(2) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.2)))


def test_resolve():
    assert schedules.resolve("linear", 4)(2) == 0.5
    fn = lambda t: 0.25  # noqa: E731
    assert schedules.resolve(fn) is fn


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, None])
def test_invalid_total_steps(bad):
    with pytest.raises(ValueError, match=r"Invalid total_steps: "):
        schedules.linear(bad)


def test_invalid_names():
    with pytest.raises(ValueError, match=r"Invalid schedule: 'exp'"):
        schedules.resolve("exp", 10)
    with pytest.raises(ValueError, match=r"Invalid total_steps: None \(schedule='cosine'"):
        schedules.resolve("cosine")
    with pytest.raises(TypeError, match=r"Invalid schedule: 3"):
        schedules.resolve(3)
