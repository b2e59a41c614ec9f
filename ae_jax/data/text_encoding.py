"""Where a text file stops being UTF-8, for the refusal that names it (`csv_reader`).

Delimited files are read as UTF-8 (a byte-order mark allowed). A file in another encoding is
refused naming its first undecodable byte (line, offset, the line's start) and how to re-save
it; a UTF-16 file, which pandas' `encoding='latin-1'` would misread as text interleaved with
NUL bytes, is named as such by its byte-order mark, or, without one, by its NUL bytes: a
delimited text file holds none (UTF-16's ASCII is valid UTF-8 with a NUL after each letter,
and was refused as a row of too few cells), and a cell that holds one is refused too (it was
a category of its own beside the same text without it).
"""

from __future__ import annotations

import codecs

import pyarrow as pa
import pyarrow.compute as pc

from ae_jax.errors import UserError

_BLOCK = 1 << 24  # bytes decoded at a time
UTF16_MARKS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
UTF32_MARKS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)  # (LE's starts as UTF-16 LE's)
MARKS = {"UTF-32": UTF32_MARKS, "UTF-16": UTF16_MARKS}  # byte-order marks, in the order tried


def first_bad_byte(path: str, block_bytes: int = _BLOCK) -> tuple[int, int, int, bytes] | None:
    """(offset, line, the byte, its line's first 80 bytes) of the first byte that is not
    UTF-8, or None.

    Decodes a block at a time; a character cut by a block's end is carried into the next, so
    the offset is the same whatever the block size (a test checks it at every boundary)."""
    done, line, line_start, carry = 0, 1, 0, b""
    with open(path, "rb") as f:
        while True:
            block = f.read(block_bytes)
            data, last = carry + block, not block
            try:
                data.decode("utf-8")
                good = len(data)
            except UnicodeDecodeError as e:
                cut = e.reason == "unexpected end of data" and e.end == len(data)
                if not cut or last:  # a bad byte (or a file ending inside a character)
                    at = e.start
                    if (nl := data.rfind(b"\n", 0, at)) >= 0:
                        line_start = done + nl + 1
                    f.seek(line_start)
                    text = f.read(80).split(b"\n")[0]
                    return done + at, line + data.count(b"\n", 0, at), data[at], text
                good = e.start  # a character cut by the block's end: decoded with the next
            if last:
                return None
            line += data.count(b"\n", 0, good)
            if (nl := data.rfind(b"\n", 0, good)) >= 0:
                line_start = done + nl + 1
            done, carry = done + good, data[good:]


def not_utf8(path: str, shown: str) -> UserError:
    """The refusal of a file that is not UTF-8 text."""
    with open(path, "rb") as f:
        head = f.read(4)
    for name, marks in MARKS.items():
        if head.startswith(marks):
            return UserError(
                f"{shown} is {name} text (it starts with a {name} byte-order mark); expected "
                f"UTF-8: save it as UTF-8, e.g. with pandas' read_csv(path, encoding="
                f"'{name.lower()}').to_csv(new_path, index=False)"
            )
    where = ""
    if bad := first_bad_byte(path):
        offset, line, byte, text = bad
        where = f": line {line} (byte {offset}) holds byte 0x{byte:02x}, in {text!r}"
    return UserError(
        f"{shown} is not UTF-8 text{where}; expected a UTF-8 delimited text file (comma, "
        "semicolon, tab or '|') with a header row: save it as UTF-8, e.g. with pandas' "
        "read_csv(path, encoding=E).to_csv(new_path, index=False), E its encoding: "
        "'latin-1' or 'cp1252' for most Western exports"
    )


_NUL = b"\x00"


def nul_in_head(head: bytes, shown: str) -> UserError:
    """The refusal of a file whose first bytes `head` hold a NUL byte: UTF-16 without a
    byte-order mark (a NUL beside most of its ASCII letters), or no text at all."""
    at = head.index(_NUL)
    line = head.count(b"\n", 0, at) + 1
    text = head[head.rfind(b"\n", 0, at) + 1 :][:80].split(b"\n")[0]
    if head.count(_NUL) * 3 >= len(head):  # UTF-16's ASCII: every other byte; UTF-32's: 3 of 4
        width = 4 if head.count(_NUL) * 5 >= len(head) * 3 else 2
        # Little-endian: the NULs after each letter; big-endian: before it.
        order = "le" if head[width - 1 :: width].count(_NUL) >= head[::width].count(_NUL) else "be"
        return UserError(
            f"{shown} holds NUL bytes beside its letters ({text!r} on line {line}): "
            f"UTF-{8 * width} text without a byte-order mark; expected UTF-8: save it as UTF-8, "
            f"e.g. with pandas' read_csv(path, encoding='utf-{8 * width}-{order}').to_csv("
            "new_path, index=False)"
        )
    return UserError(
        f"{shown}: line {line} holds a NUL byte (0x00), in {text!r}; expected a UTF-8 "
        "delimited text file, which holds none (a binary file, or a damaged export?): remove "
        "the NUL bytes or export the table again"
    )


def refuse_nul_cells(shown: str, columns: list[tuple[str, pa.ChunkedArray]]) -> None:
    """Refuses a cell holding a NUL character in any of the (name, text column) `columns`
    (dictionary-encoded pyarrow columns, their dictionaries unified)."""
    for name, col in columns:
        words = col.chunk(0).dictionary if col.num_chunks else pa.array([], pa.string())
        nul = pc.match_substring(words, "\x00")
        if pc.any(nul).as_py():
            raise UserError(
                f"{shown}: column {name.strip()!r} has a cell holding a NUL character (0x00): "
                f"{words.filter(nul)[0].as_py()!r}; expected text without one (it would be a "
                "category of its own beside the same text without it): remove the NUL bytes "
                "from the file or export the table again"
            )
