"""Refusals and rewrites added to `zerocopy.sql.check` after the red-team review (issue #4).

Each function takes the running check (`zerocopy.sql.check._Check`, untyped here to avoid an
import cycle) and is called from one line of the pipeline; none walks the whole tree again.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from zerocopy.errors import FORBIDDEN_FUNCTION


def refuse_unnamed_source(check: Any, table: exp.Table) -> bool:
    """A FROM item that is not a name the scope checks can resolve: Snowflake
    ``DIRECTORY(@stage)`` (lists a stage's files) and a string literal used as a table
    (``FROM '@stage/file.csv'``, ``FROM '/tmp/ids.csv'``, a replacement scan once emitted for
    DuckDB). Records the refusal and returns True; False for anything else."""
    this = table.this
    if isinstance(this, exp.DirectoryStage):
        stage = this.this.name if isinstance(this.this, exp.Expr) else str(this.this)
        message = (
            f"Reading the directory of the stage {stage} is not allowed: a segment may only "
            "read the source's tables."
        )
    elif isinstance(this, exp.Literal) and this.is_string:
        text = this.name
        if text.startswith("@"):
            message = (
                f"Reading the stage '{text[:80]}' is not allowed: a segment may only read the "
                "source's tables."
            )
        else:
            message = (
                f"A table given as the text '{text[:80]}' is not allowed (it reads a file or "
                "escapes the table checks): write the table name without quotes."
            )
    else:
        return False
    position = check.node_position(table)
    if position == (None, None) and isinstance(this, exp.DirectoryStage):
        position = check.token_position("DIRECTORY")
    check.source_refused = True
    check.issue(FORBIDDEN_FUNCTION, message, position)
    return True
