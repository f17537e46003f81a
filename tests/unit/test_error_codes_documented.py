"""Every stable error code has one HTTP status (``api/errors.py``) and a row in the README.

Codes: the constants of ``zerocopy.errors`` (request and run errors) and the row-error codes
of ``zerocopy.sync.types`` (a refused row; never an HTTP answer). The README's "Error codes"
section is parsed: the first cell of every table row, the HTTP cell where the table has one,
and the "Sync row errors" paragraph.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from api.errors import CODE_BY_HTTP_STATUS, STATUS_BY_CODE
from zerocopy import errors
from zerocopy.sync import types

ROOT = Path(__file__).resolve().parents[2]
CODE = re.compile(r"`([a-z][a-z0-9_]*)`")

ERROR_CODES = {v for k, v in vars(errors).items() if k.isupper() and isinstance(v, str)}
ROW_CODES = {v for k, v in vars(types).items() if k.isupper() and type(v) is str}


def error_section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("\n## Error codes\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def table_rows() -> list[list[str]]:
    """Cells of every table row of the section (header and separator rows left out)."""
    rows = []
    for line in error_section().splitlines():
        if not line.startswith("|") or set(line) <= set("|-: "):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == "code":
            continue
        rows.append(cells)
    return rows


def readme_row_codes() -> set[str]:
    """The backquoted codes of the "Sync row errors" paragraph."""
    section = error_section()
    start = section.index("**Sync row errors**")
    end = section.find("\n\n", start)
    return set(CODE.findall(section[start : end if end != -1 else len(section)]))


def readme_table_codes() -> set[str]:
    return {code for cells in table_rows() for code in CODE.findall(cells[0])}


def readme_statuses() -> dict[str, int]:
    """Code → HTTP status where the README's table gives one (``a`` / ``b`` | 409, or
    ``a``, ``b`` | 502/422 pairwise); ``—`` (not an API answer) is left out."""
    out: dict[str, int] = {}
    for cells in table_rows():
        if len(cells) < 3:
            continue
        codes = CODE.findall(cells[0])
        statuses = [int(s) for s in re.findall(r"\d{3}", cells[1])]
        if not statuses:
            continue
        assert len(statuses) in (1, len(codes)), cells
        out.update(
            zip(codes, statuses * len(codes) if len(statuses) == 1 else statuses, strict=True)
        )
    return out


def test_the_readme_section_parses() -> None:
    """The parser finds the section's rows (else every test below would pass on nothing)."""
    assert {"parse_error", "data_type_immutable", "not_found"} <= readme_table_codes()
    assert {"no_identifier", "file_invalid"} <= readme_row_codes()
    assert readme_statuses()["data_type_immutable"] == 409


def test_every_error_code_has_one_http_status() -> None:
    assert sorted(ERROR_CODES - set(STATUS_BY_CODE)) == []
    assert sorted(set(STATUS_BY_CODE) - ERROR_CODES) == []  # no stale entries
    assert set(CODE_BY_HTTP_STATUS.values()) <= ERROR_CODES
    assert all(400 <= s <= 599 for s in STATUS_BY_CODE.values())


def test_codes_raised_as_literals_are_declared() -> None:
    """``ZerocopyError("some_code", ...)`` with a literal code: the code is in zerocopy.errors."""
    found: set[tuple[str, int, str]] = set()
    for folder in ("zerocopy", "dialects", "api"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not (isinstance(node, ast.Call) and node.args):
                    continue
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                first = node.args[0]
                if name == "ZerocopyError" and isinstance(first, ast.Constant):
                    found.add((str(path.relative_to(ROOT)), node.lineno, str(first.value)))
    assert [f for f in sorted(found) if f[2] not in ERROR_CODES] == []


def test_row_error_codes_are_all_listed() -> None:
    """Every row-error constant is in ROW_ERROR_CODES (what the HTTP destination accepts)."""
    assert set(types.ROW_ERROR_CODES) == ROW_CODES
    assert len(types.ROW_ERROR_CODES) == len(ROW_CODES)
    assert not ROW_CODES & ERROR_CODES  # a row verdict is never mistaken for a request error


def test_readme_documents_every_error_code() -> None:
    assert sorted(ERROR_CODES - readme_table_codes()) == []


def test_readme_documents_every_row_error_code() -> None:
    assert sorted(ROW_CODES - readme_row_codes()) == []


def test_readme_names_only_real_codes() -> None:
    """No stale or misspelt code in the README's tables or row-error paragraph."""
    assert sorted(readme_table_codes() - ERROR_CODES) == []
    assert sorted(readme_row_codes() - ROW_CODES) == []


def test_readme_statuses_match_the_map() -> None:
    stated = readme_statuses()
    assert {c: STATUS_BY_CODE.get(c) for c in stated} == stated
