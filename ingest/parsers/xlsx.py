"""Excel (.xlsx, .xlsm): one Section per visible sheet, its rows under their column headers.

Read with openpyxl in read-only mode (rows are streamed, not loaded whole) and `data_only`, so a
formula cell gives the value Excel saved with it, as a reader sees it; a formula no program has
calculated (a file written by a script) has no saved value and is left out. Hidden sheets and
chart sheets are skipped. The anchor is `sheet=Name` (`book.xlsx#sheet=Budget`), and
`sheet=Name&rows=2-41` for the parts of a long sheet (see _office.row_sections).
"""

from __future__ import annotations

import io
import warnings
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
from openpyxl.utils.exceptions import InvalidFileException

from km_search.errors import ParseError
from km_search.types import Document, Section

from ._common import EMPTY_FILE, read_bytes
from ._office import cell_text, check_unpacked_size, core_fields, fragment_value, office_meta, row_sections


MAX_UNPACKED_MB = 256  # sheets are streamed, so this bounds the time a workbook can take, not memory
_CORE = {
    "title": "title", "author": "creator", "created": "created", "modified": "modified", "subject": "subject",
    "keywords": "keywords", "category": "category", "content_status": "contentStatus", "language": "language",
}  # fmt: skip


def parse(path: Path, rel_path: str) -> Document:
    book = open_xlsx(read_bytes(path))
    sections: list[Section] = []
    try:
        for sheet in book.worksheets:
            if getattr(sheet, "sheet_state", "visible") != "visible":
                continue
            sections.extend(sheet_sections(sheet))
        core = core_fields(book.properties, _CORE)
    except ParseError:
        raise
    except Exception as exc:  # noqa: BLE001 - broken sheet XML shows only when the sheet is read
        raise ParseError(f"not a valid Excel file: {exc}") from exc
    finally:
        book.close()
    if not sections:
        raise ParseError(EMPTY_FILE)
    return Document(path=rel_path, format="xlsx", sections=tuple(sections), meta=office_meta(core, path.stem))


def open_xlsx(data: bytes) -> Any:
    check_unpacked_size(data, "Excel", MAX_UNPACKED_MB)
    try:
        with warnings.catch_warnings():  # "unknown extension", "no default style": noise about valid files
            warnings.simplefilter("ignore")
            return openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException) as exc:
        raise ParseError("not a valid Excel file: not a zip package (an old .xls, or another file renamed?)") from exc
    except KeyError as exc:  # a zip without the workbook part: another Office file renamed
        raise ParseError(f"not a valid Excel file: missing part {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - broken XML, ...
        raise ParseError(f"not a valid Excel file: {exc}") from exc


def sheet_sections(sheet: Any) -> list[Section]:
    sheet.reset_dimensions()  # the saved dimensions may be wrong (too small): read every row there is
    rows = (
        (number, [cell_text(v) for v in values])
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1)
    )
    return row_sections(rows, (sheet.title,), f"sheet={fragment_value(sheet.title)}")
