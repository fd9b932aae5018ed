"""The fleet report as Prometheus text exposition (node_exporter's textfile collector)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client import Gauge

from collector.core.aggregate import (
    FleetReport,
)
from collector.core.records import (
    ALL_REASONS,
    UNKNOWN_REASON_CODE,
    Category,
    DeviceStatus,
    ErrorKind,
)

METRIC_PREFIX = "ike_offline"


def render_prometheus(report: FleetReport) -> str:
    """The report as a node_exporter textfile (Prometheus text exposition format).

    Low-cardinality only: series per device status, error kind, reason code and
    category (closed sets, all emitted even at 0 so alerts see a value), never per
    peer or per device. Built with ``prometheus_client`` so escaping and format are
    the library's.

    Metrics (all gauges):

    * ``ike_offline_report_timestamp_seconds``: when the report was made.
    * ``ike_offline_last_run_timestamp_seconds``: end of the run (if known).
    * ``ike_offline_last_success_timestamp_seconds``: end of the latest run that read
      at least one device (absent if none).
    * ``ike_offline_run_duration_seconds``: run wall time (if known).
    * ``ike_offline_devices{status}``: devices ok / failed.
    * ``ike_offline_device_errors{kind}``: failed devices per error kind.
    * ``ike_offline_deletions{reason_code}``, ``ike_offline_deletions_by_category{category}``:
      deletions in the report (the devices' buffers for a run, the window for history).
    * ``ike_offline_new_deletions{reason_code}``: first seen in the latest run (only when
      the report knows, i.e. from the store).
    * ``ike_offline_disruptive_deletions``, ``ike_offline_routine_deletions``: the report's
      deletions split by ``Category.routine``; ``ike_offline_new_disruptive_deletions`` and
      ``ike_offline_new_routine_deletions`` the same for the latest run's new ones (from
      the store): alert on ``new_disruptive_deletions``, which rekeying never raises.
    * ``ike_offline_unknown_reason_deletions``, ``ike_offline_flapping_peers``,
      ``ike_offline_gaps``.
    """
    # Imported here: prometheus_client (with its http.server and email imports) costs
    # ~65 ms of start-up that parse, report and collect runs without --prometheus skip.
    from prometheus_client import CollectorRegistry, Gauge, generate_latest

    registry = CollectorRegistry()

    def gauge(name: str, doc: str, labels: Sequence[str] = ()) -> Gauge:
        return Gauge(f"{METRIC_PREFIX}_{name}", doc, list(labels), registry=registry)

    gauge("report_timestamp_seconds", "When the report was generated (Unix time).").set(
        report.generated_at.timestamp()
    )
    if report.run_finished is not None:
        gauge("last_run_timestamp_seconds", "End of the collection run (Unix time).").set(
            report.run_finished.timestamp()
        )
    if report.last_success is not None:
        gauge(
            "last_success_timestamp_seconds",
            "End of the latest run that read at least one device (Unix time).",
        ).set(report.last_success.timestamp())
    duration = report.run_duration_seconds
    if duration is not None:
        gauge("run_duration_seconds", "Wall time of the collection run.").set(duration)

    devices = gauge("devices", "Devices in the run by collection status.", ["status"])
    devices.labels(status=DeviceStatus.OK.value).set(report.totals.devices_ok)
    devices.labels(status=DeviceStatus.FAILED.value).set(report.totals.devices_failed)

    errors = gauge("device_errors", "Devices that could not be read, by error kind.", ["kind"])
    error_counts = {kind: 0 for kind in ErrorKind}
    for failure in report.failing:
        error_counts[failure.error_kind] += 1
    for kind, count in error_counts.items():
        errors.labels(kind=kind.value).set(count)

    codes = [reason.code for reason in ALL_REASONS] + [UNKNOWN_REASON_CODE]
    deletions = gauge("deletions", "Deletions in the report by reason code.", ["reason_code"])
    by_code = {item.reason_code: item.count for item in report.by_reason}
    for code in codes:
        deletions.labels(reason_code=code).set(by_code.get(code, 0))

    categories = gauge(
        "deletions_by_category", "Deletions in the report by reason category.", ["category"]
    )
    by_category = {item.category: item.count for item in report.by_category}
    for category in Category:
        categories.labels(category=category.value).set(by_category.get(category, 0))

    if report.totals.new_records is not None:
        new = gauge(
            "new_deletions",
            "Deletions first seen in the latest run, by reason code.",
            ["reason_code"],
        )
        new_by_code = {item.reason_code: item.count for item in report.new_by_reason}
        for code in codes:
            new.labels(reason_code=code).set(new_by_code.get(code, 0))

    gauge(
        "disruptive_deletions",
        "Deletions in the report that took a tunnel down (not rekeys or HA housekeeping).",
    ).set(report.totals.disruptive)
    gauge("routine_deletions", "Routine deletions in the report (rekeys, HA housekeeping).").set(
        report.totals.routine
    )
    if report.totals.new_records is not None:
        new_disruptive = report.totals.new_disruptive or 0
        gauge(
            "new_disruptive_deletions",
            "Deletions first seen in the latest run that took a tunnel down (alert on this).",
        ).set(new_disruptive)
        gauge(
            "new_routine_deletions",
            "Routine deletions (rekeys, HA housekeeping) first seen in the latest run.",
        ).set(report.totals.new_routine or 0)
    gauge("unknown_reason_deletions", "Deletions whose reason the taxonomy does not know.").set(
        report.totals.unknown_reasons
    )
    gauge(
        "flapping_peers",
        "Peers listed as flapping (at least the threshold of deletions; top list only).",
    ).set(len(report.top_peers))
    gauge("gaps", "Buffer wrap-arounds in which deletions may have been lost.").set(
        max(report.totals.gaps, len(report.gaps))
    )
    return generate_latest(registry).decode("utf-8")
