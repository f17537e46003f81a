"""Schedules, the scheduler loop, housekeeping (janitor, worker-lost detection) and slots."""
