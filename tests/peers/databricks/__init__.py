"""Databricks peer: a small TCLIService-over-HTTP server backed by DuckDB (test code only)."""
