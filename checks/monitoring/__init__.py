"""Table monitoring after the sync: freshness, volume, anomalies of metric histories, column
drift."""
