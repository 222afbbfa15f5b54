"""A minimal reader for one worksheet of an ``.xlsx`` workbook (standard library only).

Handles the cell types written by spreadsheet programs: numbers, shared and inline
strings, formula strings and booleans. Enough for the supplementary tables that the
loaders read, without depending on an Excel engine.
"""

import posixpath
import re
import zipfile
from typing import Dict, List, Optional, Union
from xml.etree import ElementTree

_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_DOC_RELS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_PACKAGE_RELS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_CELL_REFERENCE = re.compile(r"^([A-Z]+)(\d+)$")

Value = Union[str, float, bool, None]


def read_xlsx_sheet(path: str, sheet_name: str) -> List[List[Value]]:
    """The cells of one worksheet as a list of rows (padded with None).

    Parameters
    ----------
    path
        The ``.xlsx`` file.
    sheet_name
        Name of the worksheet.

    Returns
    -------
    Rows from the first to the last non-empty one; numbers are floats, strings
    str, booleans bool, empty cells None.

    Raises
    ------
    ValueError
        If the file is not a valid workbook or has no such worksheet.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            sheet_xml = _sheet_member(archive, sheet_name, path)
            shared = _shared_strings(archive)
            root = ElementTree.fromstring(archive.read(sheet_xml))
    except (zipfile.BadZipFile, KeyError, ElementTree.ParseError, OSError) as error:
        raise ValueError(f"{path} is not a readable .xlsx workbook: {error}") from error
    cells: Dict[int, Dict[int, Value]] = {}
    next_row = 0
    for row in root.iter(f"{_MAIN}row"):
        row_index = int(row.get("r", next_row + 1)) - 1
        next_row = row_index + 1
        next_column = 0
        for cell in row.findall(f"{_MAIN}c"):
            column_index = next_column
            reference = cell.get("r")
            if reference is not None:
                match = _CELL_REFERENCE.match(reference)
                if match is None:
                    raise ValueError(f"{path}: bad cell reference {reference!r}.")
                column_index = _column_number(match.group(1))
            next_column = column_index + 1
            value = _cell_value(cell, shared, path)
            if value is not None:
                cells.setdefault(row_index, {})[column_index] = value
    if not cells:
        return []
    n_rows = max(cells) + 1
    n_columns = max(max(row) for row in cells.values()) + 1
    grid: List[List[Value]] = [[None] * n_columns for _ in range(n_rows)]
    for row_index, row in cells.items():
        for column_index, value in row.items():
            grid[row_index][column_index] = value
    return grid


def _sheet_member(archive: zipfile.ZipFile, sheet_name: str, path: str) -> str:
    """Archive member holding the worksheet called ``sheet_name``."""
    workbook = ElementTree.fromstring(archive.read("xl/workbook.xml"))
    relations = ElementTree.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
    targets = {
        relation.get("Id"): relation.get("Target")
        for relation in relations.iter(f"{_PACKAGE_RELS}Relationship")
    }
    names = []
    for sheet in workbook.iter(f"{_MAIN}sheet"):
        names.append(sheet.get("name"))
        if sheet.get("name") == sheet_name:
            target = targets[sheet.get(f"{_DOC_RELS}id")]
            if target.startswith("/"):
                return target.lstrip("/")
            return posixpath.normpath(posixpath.join("xl", target))
    raise ValueError(f"{path} has no worksheet {sheet_name!r} (worksheets: {names}).")


def _shared_strings(archive: zipfile.ZipFile) -> List[str]:
    if "xl/sharedStrings.xml" not in archive.namelist():
        return []
    root = ElementTree.fromstring(archive.read("xl/sharedStrings.xml"))
    return [_text(item) for item in root.iter(f"{_MAIN}si")]


def _text(element: ElementTree.Element) -> str:
    """Text of a string item: its ``t`` runs, without phonetic annotations."""
    parts = []
    for child in element:
        if child.tag == f"{_MAIN}t":
            parts.append(child.text or "")
        elif child.tag == f"{_MAIN}r":
            parts.extend(run.text or "" for run in child.iter(f"{_MAIN}t"))
    return "".join(parts)


def _column_number(letters: str) -> int:
    """0-based index of a column name: A -> 0, Z -> 25, AA -> 26."""
    number = 0
    for letter in letters:
        number = number * 26 + ord(letter) - ord("A") + 1
    return number - 1


def _cell_value(
    cell: ElementTree.Element, shared: List[str], path: str
) -> Optional[Value]:
    kind = cell.get("t", "n")
    if kind == "inlineStr":
        inline = cell.find(f"{_MAIN}is")
        return None if inline is None else _text(inline)
    raw = cell.find(f"{_MAIN}v")
    if raw is None or raw.text is None:
        return None
    if kind == "s":
        index = int(raw.text)
        if not 0 <= index < len(shared):
            raise ValueError(f"{path}: cell {cell.get('r')} has no shared string.")
        return shared[index]
    if kind in ("str", "e", "d"):
        return raw.text
    if kind == "b":
        return raw.text.strip() == "1"
    try:
        return float(raw.text)
    except ValueError as error:
        raise ValueError(
            f"{path}: cell {cell.get('r')} holds {raw.text!r}, not a number."
        ) from error
