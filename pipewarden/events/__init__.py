"""The real-time half: a webhook receiver that lands signed events, watched and reconciled."""
