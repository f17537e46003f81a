"""Which notifications a finished sync run triggers: one pure function, no I/O.

The rules (README "Notifications"):

* A run ending in ``error`` is a **sync-level error** (bad credentials, missing table,
  permission removed, warehouse gone ...). The contacts get one mail when the sync *enters*
  the failing state and one more only when the failure *changes* (another error code); further
  runs failing the same way send nothing. The first run that no longer fails sends one
  **recovery** mail.
* ``cancelled`` runs say nothing about the sync's health: no notification, state unchanged.
* Optional **row-error alert**: when ``row_error_threshold_pct`` is set and a run's row errors
  exceed that percentage of the rows it read, one alert is sent; it is not repeated while the
  following runs stay above the threshold, and re-arms after a run at or below it. A run with
  no new rows (nothing read, or only rows skipped as already delivered) has no percentage and
  keeps the alert state, as a failed run does: a quarter-hour sync whose bad rows arrive once
  an hour is alerted once, not once an hour.
* Optional **success notification** after ``success`` / ``partial_success`` /
  ``limit_exceeded`` runs, only when rows changed unless ``success_even_if_no_rows`` is set. A
  recovery already tells the contacts the sync works again, so it replaces the success mail of
  that run.
* A configured webhook receives exactly the same events as the e-mail contacts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


def distinct_addresses(addresses: Iterable[str]) -> list[str]:
    """The addresses trimmed, each once, compared without case: one mail per address however
    often (or however cased or spaced) it is listed; the first spelling is kept."""
    unique: dict[str, str] = {}
    for address in addresses:
        unique.setdefault(address.strip().lower(), address.strip())
    return list(unique.values())


class Event(StrEnum):
    """What a notification is about (stable values: they are the webhook's ``event`` field)."""

    SYNC_FAILING = "sync_failing"
    SYNC_RECOVERED = "sync_recovered"
    ROW_ERRORS_ABOVE_THRESHOLD = "row_errors_above_threshold"
    SYNC_SUCCEEDED = "sync_succeeded"


FAILED_STATUSES = frozenset({"error"})
"""Run statuses that put a sync in the failing state."""

NEUTRAL_STATUSES = frozenset({"cancelled", "running"})
"""Run statuses that say nothing about the sync's health."""

COMPLETED_STATUSES = frozenset({"success", "partial_success", "limit_exceeded"})
"""Run statuses that delivered what they read (possibly with row errors)."""


@dataclass(frozen=True, slots=True)
class AlertState:
    """What the contacts were last told about one sync; stored with the sync between runs."""

    failing_code: str | None = None
    """Error code of the sync-level failure last notified, ``None`` while healthy."""
    row_errors_alerted: bool = False
    """A row-error alert was sent and the runs since stayed above the threshold."""

    def to_dict(self) -> dict[str, Any]:
        """JSON shape for a state column."""
        return {"failing_code": self.failing_code, "row_errors_alerted": self.row_errors_alerted}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> AlertState:
        """Inverse of :meth:`to_dict`; ``None`` or ``{}`` is the healthy initial state."""
        if not data:
            return cls()
        return cls(
            failing_code=data.get("failing_code") or None,
            row_errors_alerted=bool(data.get("row_errors_alerted", False)),
        )


@dataclass(frozen=True, slots=True)
class NotificationSettings:
    """Per-sync notification settings (contacts, thresholds, webhook)."""

    contacts: tuple[str, ...] = ()
    notify_on_error: bool = True
    row_error_threshold_pct: float | None = None
    notify_on_success: bool = False
    success_even_if_no_rows: bool = False
    webhook_url: str | None = None

    @classmethod
    def from_sync(
        cls, contacts: list[str] | tuple[str, ...] | None, data: Mapping[str, Any] | None
    ) -> NotificationSettings:
        """Build from a sync's ``contacts`` and ``notifications`` JSON (unknown keys ignored).

        Keys: ``notify_on_error`` (default true), ``row_error_threshold_pct`` (0-100 or null),
        ``notify_on_success``, ``success_even_if_no_rows``, ``webhook_url``.
        """
        data = data or {}
        threshold = data.get("row_error_threshold_pct")
        return cls(
            contacts=tuple(distinct_addresses(contacts or ())),
            notify_on_error=bool(data.get("notify_on_error", True)),
            row_error_threshold_pct=None if threshold is None else float(threshold),
            notify_on_success=bool(data.get("notify_on_success", False)),
            success_even_if_no_rows=bool(data.get("success_even_if_no_rows", False)),
            webhook_url=data.get("webhook_url") or None,
        )


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """The facts of one finished run that notifications depend on."""

    sync_id: str
    sync_name: str
    run_id: str
    status: str
    rows_read: int = 0
    """Every row the run read: delivered + skipped + errored."""
    rows_delivered: int = 0
    row_errors: int = 0
    rows_skipped: int = 0
    """Rows read again that an earlier run accounted for (not a change)."""
    error_code: str | None = None
    error_message: str | None = None
    watermark_after: str | None = None
    finished_at: str | None = None

    @property
    def rows_new(self) -> int:
        """Rows this run delivered or refused (read, less those skipped as known)."""
        return max(self.rows_read - self.rows_skipped, self.rows_delivered + self.row_errors)

    @property
    def row_error_pct(self) -> float:
        """Row errors as a percentage of the rows this run delivered or refused (0 when none):
        rows re-read and skipped as already delivered do not dilute it."""
        return 100.0 * self.row_errors / self.rows_new if self.rows_new else 0.0


@dataclass(frozen=True, slots=True)
class Notification:
    """One message to send to every channel (e-mail contacts and webhook)."""

    event: Event
    subject: str
    body: str
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Decision:
    """The notifications to send for one run and the state to store afterwards."""

    notifications: tuple[Notification, ...]
    state: AlertState


def decide(previous: AlertState, outcome: RunOutcome, settings: NotificationSettings) -> Decision:
    """Notifications for ``outcome`` given what was told before; pure, exhaustively tested."""
    if outcome.status in NEUTRAL_STATUSES:
        return Decision((), previous)
    out: list[Notification] = []
    if outcome.status in FAILED_STATUSES:
        code = outcome.error_code or "error"
        if previous.failing_code != code and settings.notify_on_error:
            out.append(_failing(outcome, code, previous.failing_code))
        # Row-error alert state is kept: a failed run reads no verdict on row quality.
        return Decision(tuple(out), AlertState(code, previous.row_errors_alerted))
    if outcome.status not in COMPLETED_STATUSES:
        raise ValueError(f"unknown run status {outcome.status!r}")
    recovered = previous.failing_code is not None
    if recovered and settings.notify_on_error:
        out.append(_recovered(outcome, previous.failing_code or "error"))
    threshold = settings.row_error_threshold_pct
    if outcome.rows_new > 0:
        above = threshold is not None and outcome.row_error_pct > threshold
    else:  # no percentage: no verdict on row quality, the alert state stays
        above = threshold is not None and previous.row_errors_alerted
    if above and not previous.row_errors_alerted:
        out.append(_row_errors(outcome, threshold or 0.0))
    changed = outcome.rows_new > 0
    wants_success = settings.notify_on_success and (changed or settings.success_even_if_no_rows)
    if wants_success and not (recovered and settings.notify_on_error):
        out.append(_succeeded(outcome))
    return Decision(tuple(out), AlertState(None, above))


def _payload(event: Event, outcome: RunOutcome, **extra: Any) -> dict[str, Any]:
    return {
        "event": event.value,
        "sync_id": outcome.sync_id,
        "sync_name": outcome.sync_name,
        "run_id": outcome.run_id,
        "status": outcome.status,
        "rows_read": outcome.rows_read,
        "rows_delivered": outcome.rows_delivered,
        "rows_skipped": outcome.rows_skipped,
        "row_errors": outcome.row_errors,
        "error_code": outcome.error_code,
        "error_message": outcome.error_message,
        "watermark_after": outcome.watermark_after,
        "finished_at": outcome.finished_at,
        **extra,
    }


def _counts(outcome: RunOutcome) -> str:
    return (
        f"Rows read: {outcome.rows_read}\nRows delivered: {outcome.rows_delivered}\n"
        f"Rows skipped (already delivered): {outcome.rows_skipped}\n"
        f"Row errors: {outcome.row_errors}\nRun: {outcome.run_id}\n"
    )


def _failing(outcome: RunOutcome, code: str, before: str | None) -> Notification:
    what = "is failing" if before is None else f"now fails differently (was {before})"
    body = (
        f"The sync {outcome.sync_name!r} {what}: {code}.\n\n{outcome.error_message or ''}\n\n"
        "Nothing was delivered past the last watermark; fix the cause and the next run resumes "
        f"from there. You will get one more mail when it recovers.\n\n{_counts(outcome)}"
    )
    return Notification(
        Event.SYNC_FAILING,
        f"[zerocopy] Sync {outcome.sync_name} is failing: {code}",
        body,
        _payload(Event.SYNC_FAILING, outcome, previous_error_code=before),
    )


def _recovered(outcome: RunOutcome, before: str) -> Notification:
    return Notification(
        Event.SYNC_RECOVERED,
        f"[zerocopy] Sync {outcome.sync_name} recovered",
        f"The sync {outcome.sync_name!r} runs again (it was failing with {before}).\n\n"
        + _counts(outcome),
        _payload(Event.SYNC_RECOVERED, outcome, previous_error_code=before),
    )


def _row_errors(outcome: RunOutcome, threshold: float) -> Notification:
    pct = round(outcome.row_error_pct, 2)
    return Notification(
        Event.ROW_ERRORS_ABOVE_THRESHOLD,
        f"[zerocopy] Sync {outcome.sync_name}: {pct}% row errors",
        f"{pct}% of the rows read by the last run of {outcome.sync_name!r} were refused "
        f"(threshold {threshold}%). The row errors list says why for each row.\n\n"
        + _counts(outcome),
        _payload(
            Event.ROW_ERRORS_ABOVE_THRESHOLD,
            outcome,
            row_error_pct=pct,
            threshold_pct=threshold,
        ),
    )


def _succeeded(outcome: RunOutcome) -> Notification:
    return Notification(
        Event.SYNC_SUCCEEDED,
        f"[zerocopy] Sync {outcome.sync_name}: {outcome.status}",
        f"The sync {outcome.sync_name!r} finished with {outcome.status}.\n\n" + _counts(outcome),
        _payload(Event.SYNC_SUCCEEDED, outcome),
    )
