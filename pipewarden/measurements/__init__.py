"""What pipewarden measures: the metric points of every sync, check, reconciliation and alert
delivery, which `records.metrics` writes to `pipewarden_metrics` (long format).

Per sync run (at the run's end; full loads labelled `{"load": "full"}`): rows_read, rows_loaded,
rows_unchanged, rows_quarantined, duration_seconds, latency_p50/p95/max_seconds (loaded at minus
source cursor time), freshness_seconds (run end minus the newest cursor loaded so far),
newest_cursor_epoch, sync_succeeded. Per column (labels `{"column": name}`): null_rate,
distinct_rate, distinct_count and, for numbers, mean, min, max, p05, p50, p95. Per cursor hour:
rows_by_cursor_hour (each row once, when the watermark moves over it; a full load's hours labelled
`{"load": "full"}`). Per run and column, in `pipewarden_column_samples`: null counts and a
bounded sample or category counts, for the drift and null-rate monitors. Per check run:
check_freshness_seconds, staleness_seconds, the SLA it was judged by
(freshness_warn_after_seconds, freshness_error_after_seconds) and check_outcome (labels
`{"check": …, "status": …}`; 0 ok, 1 warn or anomaly, 2 error).
Reconciliations and alert deliveries: `<kind>_outcome` (`outcomes.outcome_points`).
"""
