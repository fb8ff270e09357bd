"""Anomaly detection over metric histories: seasonal robust baselines, scored from the past only.

The entry points are `checks.monitoring.anomaly.detector.score_latest` (monitoring: the newest point
of a metric) and `checks.monitoring.anomaly.detector.detect_series` (backtests: every point, in
order).
"""
