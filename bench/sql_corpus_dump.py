"""Dump every SQL-corpus result for every target dialect to JSON (a before/after diff tool).

For each case of ``tests/sql_corpus/*.yaml``, each of its input dialects, and each target
(the case's own target or the input dialect, then every warehouse dialect and fabric), runs
`check_segment_sql` and records the whole result (``to_dict()``: validity, errors with
messages and positions, transpiled SQL, ids SQL, tables). Two dumps of different code must be
byte-identical when a change is meant to keep the check's output as it was.

Usage: .venv/bin/python bench/sql_corpus_dump.py OUT.json
       .venv/bin/python bench/sql_corpus_dump.py --diff A.json B.json
``ZEROCOPY_SQL_CORPUS=DIR`` reads the cases from a copy of the corpus (it may change while
two dumps are taken); results present in only one dump are counted apart from differences.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT))  # tests.unit.sql.catalog; zerocopy as installed or on PYTHONPATH

from tests.unit.sql.catalog import CATALOG, SCOPE, corpus_cases  # noqa: E402
from zerocopy.sql import SqlCatalog, check_segment_sql  # noqa: E402

TARGETS = ("snowflake", "bigquery", "redshift", "databricks", "duckdb", "postgres", "fabric")


def dump() -> dict[str, Any]:
    """``{"file:case:dialect->target": result dict}`` for the whole corpus."""
    catalog = SqlCatalog(CATALOG)
    out: dict[str, Any] = {}
    corpus = pathlib.Path(os.environ.get("ZEROCOPY_SQL_CORPUS") or ROOT / "tests" / "sql_corpus")
    for path, case, dialect in corpus_cases(corpus):
        own = case.get("target")
        targets = [own or dialect, *(t for t in TARGETS if t != (own or dialect))]
        for target in targets:
            result = check_segment_sql(
                case["sql"],
                dialect=dialect,
                catalog=catalog,
                scope=case.get("scope", SCOPE),
                id_column=case.get("id_column", "external_user_id"),
                target=target,
            )
            out[f"{path.stem}:{case['id']}:{dialect}->{target}"] = result.to_dict()
    return out


def diff(a: str, b: str) -> int:
    """Print the results that differ between two dumps; exit status 1 when any does."""
    left = json.loads(pathlib.Path(a).read_text())
    right = json.loads(pathlib.Path(b).read_text())
    common = sorted(set(left) & set(right))
    bad = 0
    for key in common:
        if left[key] != right[key]:
            bad += 1
            if bad <= 20:
                print(f"DIFF {key}\n  - {left[key]}\n  + {right[key]}")
    only = len(set(left) ^ set(right))
    print(f"{len(common)} results in both dumps ({only} in one only); {bad} differ")
    return 1 if bad else 0


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--diff":
        return diff(sys.argv[2], sys.argv[3])
    if len(sys.argv) != 2 or sys.argv[1].startswith("-"):
        # ``--help`` (or any option) prints the usage; it is never taken for the output path
        print(__doc__)
        return 0 if sys.argv[1:] in (["--help"], ["-h"]) else 2
    results = dump()
    pathlib.Path(sys.argv[1]).write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    import zerocopy.sql.check as code

    print(f"{len(results)} results of {code.__file__} written to {sys.argv[1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
