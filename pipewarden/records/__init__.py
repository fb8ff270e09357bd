"""pipewarden's own tables in the warehouse, and their typed records."""
