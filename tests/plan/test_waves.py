"""The wave layout and the counts of `waves:` (pure functions: no servers needed)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from rollback_tui.plan.waves import Waves, plan_waves

HOSTS = [f"h{n:02d}" for n in range(20)]


def test_canary_then_fixed_waves_in_group_order() -> None:
    layout = plan_waves(HOSTS, Waves(size=5, first=1))
    assert [len(wave) for wave in layout] == [1, 5, 5, 5, 4]
    assert [host for wave in layout for host in wave] == HOSTS


def test_percentages_round_up_and_the_budget_rounds_down() -> None:
    waves = Waves(size="15%", first="1%", failure_budget="12%")
    assert waves.wave_size(20) == 3  # 3.0
    assert waves.canary(20) == 1  # 0.2 rounded up: at least one host
    assert waves.budget(20) == 2  # 2.4 rounded down
    assert Waves(size="10%").wave_size(7) == 1
    assert [len(w) for w in plan_waves(HOSTS[:7], Waves(size="50%"))] == [4, 3]


def test_no_empty_wave_and_a_size_larger_than_the_group_is_one_wave() -> None:
    assert plan_waves(HOSTS[:3], Waves(size=10)) == [HOSTS[:3]]
    assert plan_waves(HOSTS[:3], Waves(size=1, first=3)) == [HOSTS[:3]]
    assert plan_waves([], Waves(size=1)) == []


def test_between_words() -> None:
    assert Waves(size=1).pause is None
    assert Waves(size=1, between="pause 90s").pause == 90.0
    assert Waves(size=1, between="pause 2m").between == "pause 120s"


@pytest.mark.parametrize("bad", [{"size": 0}, {"size": "0%"}, {"size": "101%"}, {"size": -1}, {"size": True},
                                 {"size": "ten"}, {"size": 1, "first": 0}, {"size": 1, "between": "pause soon"},
                                 {"size": 1, "failure_budget": "200%"}, {"first": 1}])
def test_refused(bad: dict) -> None:
    with pytest.raises(ValidationError):
        Waves(**bad)


def test_describe_names_the_layout_and_the_budget() -> None:
    text = Waves(size=5, first=1, failure_budget="10%").describe(20)
    assert text == ("5 wave(s) of 1, 5, 5, 5, 4 host(s) (canary 1 host(s), then waves of 5); failure budget 2 of 20 "
                    "hosts; between waves: a go / no-go")
