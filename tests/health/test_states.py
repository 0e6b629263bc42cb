"""The state rules: thresholds of consecutive failures and successes, slow successes, first results."""

from __future__ import annotations

from rollback_tui.health.states import ProbeStatus, Thresholds

OK, FAIL, SLOW = (True, False), (False, False), (True, True)


def run(rules: Thresholds, results: list[tuple[bool, bool]]) -> list[str]:
    status = ProbeStatus(rules)
    states = []
    for ok, degraded in results:
        status.record(ok=ok, degraded=degraded, reason="r", latency_ms=1.0)
        states.append(status.state)
    return states


def test_unknown_until_first_result_then_healthy() -> None:
    status = ProbeStatus(Thresholds())
    assert status.state == "unknown" and status.reason == "not sampled yet"
    assert status.record(ok=True, degraded=False, reason="status 200", latency_ms=3.0) == "unknown"
    assert status.state == "healthy"
    assert status.as_dict()["state"] == "healthy" and status.as_dict()["since"].endswith("Z")


def test_failures_degrade_then_go_down_at_their_thresholds() -> None:
    rules = Thresholds(degraded_after=2, down_after=4, healthy_after=1)
    assert run(rules, [OK, FAIL, FAIL, FAIL, FAIL, FAIL]) == [
        "healthy", "healthy", "degraded", "degraded", "down", "down"]


def test_a_success_resets_the_failure_count() -> None:
    rules = Thresholds(degraded_after=2, down_after=3, healthy_after=1)
    # alternating pass/fail never reaches two failures in a row: the probe stays healthy
    assert run(rules, [OK, FAIL, OK, FAIL, OK, FAIL]) == ["healthy"] * 6


def test_recovery_needs_healthy_after_successes_in_a_row() -> None:
    rules = Thresholds(degraded_after=1, down_after=2, healthy_after=3)
    assert run(rules, [FAIL, FAIL, OK, OK, FAIL, OK, OK, OK]) == [
        "degraded", "down", "down", "down", "down", "down", "down", "healthy"]


def test_never_seen_passing_stays_unknown_until_degraded_threshold() -> None:
    rules = Thresholds(degraded_after=2, down_after=3)
    assert run(rules, [FAIL, FAIL, FAIL]) == ["unknown", "degraded", "down"]


def test_down_after_below_degraded_after_goes_straight_down() -> None:
    assert run(Thresholds(degraded_after=3, down_after=1), [OK, FAIL]) == ["healthy", "down"]


def test_slow_success_is_degraded_and_does_not_count_towards_healthy() -> None:
    rules = Thresholds(degraded_after=1, down_after=3, healthy_after=2)
    assert run(rules, [OK, SLOW, OK, OK, SLOW, FAIL, FAIL, FAIL]) == [
        "healthy", "degraded", "degraded", "healthy", "degraded", "degraded", "degraded", "down"]


def test_record_returns_the_old_state_only_on_a_change() -> None:
    status = ProbeStatus(Thresholds(degraded_after=1, down_after=3))
    assert status.record(ok=True, degraded=False, reason="", latency_ms=None) == "unknown"
    assert status.record(ok=True, degraded=False, reason="", latency_ms=None) is None
    assert status.record(ok=False, degraded=False, reason="refused", latency_ms=None) == "healthy"
    assert status.reason == "refused"


def test_an_unknown_result_makes_the_state_unknown_and_resets_the_counts() -> None:
    status = ProbeStatus(Thresholds(degraded_after=1, down_after=2, healthy_after=2))
    assert status.record(ok=False, degraded=False, reason="x", latency_ms=None) == "unknown"  # now degraded
    assert status.record(ok=False, degraded=False, reason="no series", latency_ms=1.0, unknown=True) == "degraded"
    assert (status.state, status.reason, status.failures) == ("unknown", "no series", 0)
    assert status.record(ok=False, degraded=False, reason="no series", latency_ms=1.0, unknown=True) is None
    assert status.record(ok=True, degraded=False, reason="value 0", latency_ms=1.0) == "unknown"
    assert status.state == "healthy"
