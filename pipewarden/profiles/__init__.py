"""Customer profiles: one row per customer built in the warehouse, served at send time."""
