"""Read SDF files: one record per ``$$$$``-terminated mol block with its data items."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise

from molvae.chem.records import RawRecord, _decoded, _decompression_errors, _open_text, _record

_SDF_END = "$$$$"


def _sdf_records(source: str, id_col: str | None) -> Iterator[RawRecord]:
    with _open_text(source, newline=None) as stream, _decompression_errors(source):
        lines: list[str] = []
        first_line = 1
        row = 0
        for line_number, line in enumerate(stream, start=1):
            if line.rstrip() == _SDF_END:
                row += 1
                yield _sdf_record(source, row, first_line, lines, id_col)
                lines = []
                first_line = line_number + 1
            else:
                lines.append(line)
        # A last record may lack its $$$$; trailing blank lines are not a record.
        if any(line.strip() for line in lines):
            yield _sdf_record(source, row + 1, first_line, lines, id_col)


def _sdf_record(
    source: str, row: int, first_line: int, lines: list[str], id_col: str | None
) -> RawRecord:
    text = "".join(lines)
    # The only structure checked here: a mol block (V2000 or V3000) ends with "M  END",
    # whose absence means a truncated or mangled record. RDKit judges the rest later.
    end = next((i for i, line in enumerate(lines) if line.startswith("M  END")), None)
    if not text.strip():
        error = "empty"
    elif end is None:
        error = f"unreadable SDF record: no 'M  END' line (record starts at line {first_line})"
    elif not _decoded("".join(lines[3:end]))[1]:
        # Only the connection table (after the title, program and comment lines) defines the
        # molecule: a legacy encoding in a name or data item is escaped but not rejected.
        error = "not valid UTF-8"
    else:
        error = None
    # The title is the first line of the mol block; an id data item replaces it when asked.
    title = lines[0] if lines else None
    record_id = title if id_col is None else _sdf_data_item(lines, id_col)
    return _record(source, row, "molblock", text, record_id, error, checked=True)


def _sdf_data_item(lines: list[str], name: str) -> str | None:
    """The first value line of data item ``name`` (header ``>  <name>``), if present."""
    tag = f"<{name}>"
    for header, value in pairwise(lines):
        if header.startswith(">") and tag in header:
            return value
    return None
