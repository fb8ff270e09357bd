"""Long-running servers over pipewarden's tables: the Prometheus exporter."""
