"""Incremental ingestion syncs: definitions, row validation, watermark logic, the run engine."""
