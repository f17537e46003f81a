"""HTTP controllers: path, guards, DI and an explicit operation id; no business rules here."""
