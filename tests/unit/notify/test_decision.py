"""The notification decision: every (previous state, run outcome, settings) case by table."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from zerocopy.notify.decision import (
    AlertState,
    Event,
    NotificationSettings,
    RunOutcome,
    decide,
)

HEALTHY = AlertState()
FAILING_AUTH = AlertState(failing_code="auth_failed")
ALERTED = AlertState(row_errors_alerted=True)
ON_ERROR = NotificationSettings(contacts=("ops@example.com",))
EVERYTHING = NotificationSettings(
    contacts=("ops@example.com",),
    row_error_threshold_pct=10.0,
    notify_on_success=True,
    success_even_if_no_rows=True,
    webhook_url="http://127.0.0.1:9/hook",
)


def run(status: str, **kw: object) -> RunOutcome:
    """A run outcome with sensible defaults."""
    base: dict[str, object] = {"rows_read": 100, "rows_delivered": 100, "row_errors": 0}
    if status == "error":
        base = {"rows_read": 0, "rows_delivered": 0, "error_code": "auth_failed"}
    base.update(kw)
    return RunOutcome(sync_id="s1", sync_name="users", run_id="r1", status=status, **base)  # type: ignore[arg-type]


def events(previous: AlertState, outcome: RunOutcome, settings: NotificationSettings) -> list[str]:
    return [n.event.value for n in decide(previous, outcome, settings).notifications]


@pytest.mark.parametrize(
    ("previous", "outcome", "settings", "expected_events", "expected_state"),
    [
        # Sync-level errors: one mail on entering the failing state...
        (HEALTHY, run("error"), ON_ERROR, ["sync_failing"], FAILING_AUTH),
        # ...none while it keeps failing the same way...
        (FAILING_AUTH, run("error"), ON_ERROR, [], FAILING_AUTH),
        # ...one when the failure changes (credentials fixed, now the table is gone)...
        (
            FAILING_AUTH,
            run("error", error_code="unknown_table"),
            ON_ERROR,
            ["sync_failing"],
            AlertState("unknown_table"),
        ),
        # ...and one on recovery, whatever completed status recovers it.
        (FAILING_AUTH, run("success"), ON_ERROR, ["sync_recovered"], HEALTHY),
        (FAILING_AUTH, run("partial_success", row_errors=3), ON_ERROR, ["sync_recovered"], HEALTHY),
        (FAILING_AUTH, run("limit_exceeded"), ON_ERROR, ["sync_recovered"], HEALTHY),
        # A recovery with no rows still recovers.
        (
            FAILING_AUTH,
            run("success", rows_read=0, rows_delivered=0),
            ON_ERROR,
            ["sync_recovered"],
            HEALTHY,
        ),
        # Error notifications switched off: the state is still tracked, nothing is sent.
        (HEALTHY, run("error"), replace(ON_ERROR, notify_on_error=False), [], FAILING_AUTH),
        (FAILING_AUTH, run("success"), replace(ON_ERROR, notify_on_error=False), [], HEALTHY),
        # An error without a code is still a failure (code "error").
        (HEALTHY, run("error", error_code=None), ON_ERROR, ["sync_failing"], AlertState("error")),
        # Cancelled (and still running) runs say nothing about health.
        (FAILING_AUTH, run("cancelled"), EVERYTHING, [], FAILING_AUTH),
        (HEALTHY, run("cancelled"), EVERYTHING, [], HEALTHY),
        (ALERTED, run("running"), EVERYTHING, [], ALERTED),
        # Healthy and successful with defaults: silence.
        (HEALTHY, run("success"), ON_ERROR, [], HEALTHY),
        (HEALTHY, run("partial_success", row_errors=90), ON_ERROR, [], HEALTHY),
    ],
)
def test_sync_level_transitions(
    previous: AlertState,
    outcome: RunOutcome,
    settings: NotificationSettings,
    expected_events: list[str],
    expected_state: AlertState,
) -> None:
    decision = decide(previous, outcome, settings)
    assert [n.event.value for n in decision.notifications] == expected_events
    assert decision.state == expected_state


THRESHOLD = NotificationSettings(contacts=("a@example.com",), row_error_threshold_pct=10.0)


@pytest.mark.parametrize(
    ("previous", "row_errors", "rows_read", "expected", "alerted_after"),
    [
        (HEALTHY, 11, 100, ["row_errors_above_threshold"], True),  # 11 % > 10 %
        (HEALTHY, 10, 100, [], False),  # exactly at the threshold: not above
        (HEALTHY, 0, 0, [], False),  # nothing read: no percentage
        (ALERTED, 50, 100, [], True),  # still above: not repeated
        (ALERTED, 5, 100, [], False),  # back below: re-armed
        (ALERTED, 0, 0, [], True),  # an empty run has no percentage: the state stays
    ],
)
def test_row_error_threshold(
    previous: AlertState, row_errors: int, rows_read: int, expected: list[str], alerted_after: bool
) -> None:
    outcome = run(
        "partial_success" if row_errors else "success",
        rows_read=rows_read,
        rows_delivered=rows_read - row_errors,
        row_errors=row_errors,
    )
    decision = decide(previous, outcome, THRESHOLD)
    assert [n.event.value for n in decision.notifications] == expected
    assert decision.state.row_errors_alerted is alerted_after


def test_row_error_alert_names_the_percentage() -> None:
    (note,) = decide(
        HEALTHY, run("partial_success", row_errors=25, rows_read=200), THRESHOLD
    ).notifications
    assert note.payload["row_error_pct"] == 12.5
    assert note.payload["threshold_pct"] == 10.0
    assert "12.5%" in note.subject


def test_failed_run_keeps_the_row_error_alert_state() -> None:
    assert decide(ALERTED, run("error"), THRESHOLD).state == AlertState("auth_failed", True)


@pytest.mark.parametrize(
    ("rows_read", "even_if_none", "expected"),
    [
        (5, False, ["sync_succeeded"]),
        (0, False, []),
        (0, True, ["sync_succeeded"]),
        (5, True, ["sync_succeeded"]),
    ],
)
def test_success_notification(rows_read: int, even_if_none: bool, expected: list[str]) -> None:
    settings = NotificationSettings(notify_on_success=True, success_even_if_no_rows=even_if_none)
    outcome = run("success", rows_read=rows_read, rows_delivered=rows_read)
    assert events(HEALTHY, outcome, settings) == expected


def test_success_notification_counts_row_errors_as_a_change() -> None:
    settings = NotificationSettings(notify_on_success=True)
    outcome = run("partial_success", rows_read=3, rows_delivered=0, row_errors=3)
    assert events(HEALTHY, outcome, settings) == ["sync_succeeded"]


def test_recovery_replaces_the_success_mail_but_not_the_row_error_alert() -> None:
    outcome = run("partial_success", rows_read=100, rows_delivered=50, row_errors=50)
    assert events(FAILING_AUTH, outcome, EVERYTHING) == [
        "sync_recovered",
        "row_errors_above_threshold",
    ]


def test_success_mail_on_recovery_when_error_mails_are_off() -> None:
    settings = replace(EVERYTHING, notify_on_error=False)
    assert events(FAILING_AUTH, run("success"), settings) == ["sync_succeeded"]


def test_unknown_status_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown run status"):
        decide(HEALTHY, run("exploded"), ON_ERROR)


def test_payloads_carry_the_run_facts() -> None:
    outcome = run("error", error_code="permission_denied", error_message="no SELECT on users")
    (note,) = decide(FAILING_AUTH, outcome, ON_ERROR).notifications
    assert note.event is Event.SYNC_FAILING
    assert note.payload["event"] == "sync_failing"
    assert note.payload["error_code"] == "permission_denied"
    assert note.payload["previous_error_code"] == "auth_failed"
    assert note.payload["sync_id"] == "s1" and note.payload["run_id"] == "r1"
    assert "no SELECT on users" in note.body
    assert "permission_denied" in note.subject


STATUSES = ["success", "partial_success", "limit_exceeded", "error", "cancelled"]
STATES = [HEALTHY, FAILING_AUTH, ALERTED, AlertState("unknown_table", True)]


@pytest.mark.parametrize(("status", "previous"), list(itertools.product(STATUSES, STATES)))
def test_no_run_ever_sends_one_event_twice_and_repeats_are_silent(
    status: str, previous: AlertState
) -> None:
    """Invariant over every status and state: no duplicate events; the same run again only repeats
    a success mail (which is per run by design)."""
    outcome = run(status, row_errors=50) if status == "partial_success" else run(status)
    first = decide(previous, outcome, EVERYTHING)
    kinds = [n.event for n in first.notifications]
    assert len(kinds) == len(set(kinds))
    again = [n.event for n in decide(first.state, outcome, EVERYTHING).notifications]
    assert set(again) <= {Event.SYNC_SUCCEEDED}
    assert AlertState.from_dict(first.state.to_dict()) == first.state


def test_state_round_trip_from_empty() -> None:
    assert AlertState.from_dict(None) == HEALTHY
    assert AlertState.from_dict({}) == HEALTHY


def test_settings_from_a_sync_row() -> None:
    settings = NotificationSettings.from_sync(
        ["a@example.com"],
        {"row_error_threshold_pct": 5, "notify_on_success": True, "webhook_url": "https://h/x"},
    )
    assert settings == NotificationSettings(
        contacts=("a@example.com",),
        row_error_threshold_pct=5.0,
        notify_on_success=True,
        webhook_url="https://h/x",
    )
    assert NotificationSettings.from_sync(None, None) == NotificationSettings()
