"""State: SQLAlchemy models, the database/session factory, Alembic migrations, membership store."""

from zerocopy.state.db import Database
from zerocopy.state.models import (
    ApiKey,
    Base,
    CatalogTable,
    Credential,
    RefreshRun,
    RunStatus,
    RunTrigger,
    Segment,
    SegmentMemberChunk,
    SegmentStatus,
    Source,
    SourceStatus,
    Workspace,
)

__all__ = [
    "ApiKey",
    "Base",
    "CatalogTable",
    "Credential",
    "Database",
    "RefreshRun",
    "RunStatus",
    "RunTrigger",
    "Segment",
    "SegmentMemberChunk",
    "SegmentStatus",
    "Source",
    "SourceStatus",
    "Workspace",
]
