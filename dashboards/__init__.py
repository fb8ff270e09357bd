"""Grafana dashboards as JSON (this folder), and the code that provisions them.

`catalog` reads the JSON and binds it to a datasource uid; `datasource` builds the PostgreSQL
datasource from a warehouse URL; `reader_role` says what the datasource's read-only role may
read; `provision` creates or updates the datasource, the folder and the dashboards in Grafana.
"""
