"""One module per adapter kind: a session fixture ``<kind>_target`` and ``CAN_SHOW``."""
