"""msgspec DTOs of the HTTP API: Create / Update / Read split per resource; secrets write-only."""
