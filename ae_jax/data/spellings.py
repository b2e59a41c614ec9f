"""Names and categories that match training's but for how they are written.

One text has several Unicode spellings: 'é' is one code point (NFC, as most programs write it)
or 'e' and a combining accent (NFD, as macOS file names and some exports write it); they look
identical, and a column or category written the other way is still the one trained on:
`canonical_matches` finds it. Other near matches are only said, since they may be other values:
case ('lisbon' for 'Lisbon') and leading zeros dropped by a reader ('2134' for '02134', pandas'
integer zip codes), in `unseen_hint`; and columns renamed, or a data row read as the header,
in `same_count_hint`.
"""

from __future__ import annotations

import collections
import re
import unicodedata

from ae_jax.data.cells import LEADING_ZERO, is_number, number_or_none, quote_names
from ae_jax.errors import UserError


def canonical(text: str) -> str:
    """`text` in Unicode's composed form (NFC), stripped: one spelling per text."""
    return unicodedata.normalize("NFC", str(text)).strip()


def canonical_matches(texts: list[str], known: list[str]) -> dict[str, str]:
    """Each of `texts` that is not in `known` but is, written in the same canonical form, one of
    `known` alone (two of `known` in one form stay unmatched): text -> that one."""
    forms = collections.Counter(canonical(k) for k in known)
    by_form = {canonical(k): k for k in known if forms[canonical(k)] == 1}
    exact = set(known)
    return {t: by_form[canonical(t)] for t in texts if t not in exact and canonical(t) in by_form}


def respelled(columns: list[str], extra: list[str], missing: list[str]) -> list[str] | None:
    """`columns` with each of `extra` that is one of `missing` respelled (`canonical_matches`)
    named as that one, or None when none is. A pixel's column is its number's whatever the
    underscore: a Kaggle-style file's `pixel0 ...` for a run trained from an array or IDX
    files (named `pixel_0 ...`) was refused with 1,568 names listed (a probe)."""
    matches = canonical_matches(extra, missing) | _pixel_matches(extra, missing)
    return [matches.get(c, c) for c in columns] if matches else None


def _pixel_matches(extra: list[str], missing: list[str]) -> dict[str, str]:
    """Each of `extra` named pixelK or pixel_K (any case) -> the one of `missing` of the same
    number K, where each K names one column on either side. (A file numbered from 1, `pixel1
    ... pixel784`, for columns numbered from 0 keeps one name unmatched on each side: refused,
    naming those two.)"""

    ours, theirs = (
        collections.Counter(map(pixel_number, missing)),
        collections.Counter(map(pixel_number, extra)),
    )
    by_k = {k: c for c in missing if (k := pixel_number(c)) is not None and ours[k] == 1}
    return {c: by_k[k] for c in extra if (k := pixel_number(c)) in by_k and theirs[k] == 1}


def unseen_hint(where: str, texts: list[str], known: list[str], every: bool) -> str:
    """What the warning of categories unseen in training (`texts`, distinct) adds: a case
    mismatch, leading zeros dropped, or that every cell is unseen. A whole column that cannot
    match is refused: numbers where training had text categories (codes, an array of numbers),
    or texts that differ from training's only in case ('lisbon' for 'Lisbon'; surrounding
    spaces are stripped already): each would be encoded as the unseen category, the column's
    information gone."""
    fold = {k.casefold().strip(): k for k in known}
    near = [(t, fold[t.casefold().strip()]) for t in texts if t.casefold().strip() in fold]
    pairs = ", ".join(f"{t!r} (training: {k!r})" for t, k in near[:3])
    if every and not any(number_or_none(k) is not None for k in known) and texts:
        if all(number_or_none(t) is not None for t in texts):
            raise UserError(
                f"{where} holds numbers ({quote_names(texts[:3])[1:-1]}), but its categories in "
                f"training were texts ({quote_names(known[:4])[1:-1]}): every cell would be "
                "encoded as the unseen category. Give the column's texts as in training (the "
                "file's rows, or an array of strings), not codes or numbers"
            )
    if every and len(near) == len(texts) and texts:
        raise UserError(
            f"{where}: none of its values is a category of training, but each differs from one "
            f"only in case: {pairs}; categories are matched exactly: write them as in training"
        )
    said = f"; some differ from a training category only in case: {pairs}" * bool(near)
    zeros = _zeros_dropped(texts, known)
    said += (
        "; some are a training category without its leading zeros: "
        + ", ".join(f"{t!r} (training: {k!r})" for t, k in zeros[:3])
        + " (read as numbers: read the column as text, e.g. pandas' read_csv(dtype={column: "
        "str}), or pad it, e.g. .str.zfill(5))"
    ) * bool(zeros)
    return said + "; that is every value of the column: is it the column trained on?" * every


def _zeros_dropped(texts: list[str], known: list[str]) -> list[tuple[str, str]]:
    """(text, category) pairs where `text`, a whole number written without leading zeros, is
    the value of exactly one category written with them ('2134' and '02134')."""
    padded = collections.defaultdict(list)
    for k in known:
        if LEADING_ZERO.match(k) and (v := number_or_none(k)) is not None and v == int(v):
            padded[v].append(k)
    return [
        (t, padded[v][0])
        for t in texts
        if not LEADING_ZERO.match(t) and (v := number_or_none(t)) is not None
        if len(padded.get(v, ())) == 1
    ]


def same_count_hint(given: list[str], n: int, text_file: bool) -> str:
    """What a table with as many columns as trained, under other names, adds to its refusal:
    renamed columns (scikit-learn's pixel_0_0 for pixel_0), or, in a delimited `text_file`, a
    first row of data read as names (no header: 8,129.498,...,Sep,...), when half its names
    are numbers (a data frame's 0, 1, ... are names all the same)."""
    if len(given) != n:
        return ""
    if text_file and sum(is_number(g) for g in given) * 2 >= n:
        return (
            "; as many, and the names look like a row of data: the file has no header? add the "
            "header row of the training's columns"
        )
    return "; as many: renamed? rename them"


def pixel_names(columns) -> list[str]:
    """An array's flat columns x_0, x_1, ... (each at its own position) as an image's pixels
    are named, pixel_0, pixel_1, ...; other names as they are."""
    return [f"pixel_{j}" if c == f"x_{j}" else c for j, c in enumerate(columns)]


def pixel_number(name) -> int | None:
    """K of a column named pixelK or pixel_K (any case), as image pixels are named; else None."""
    m = re.fullmatch(r"pixel_?(\d+)", str(name), re.IGNORECASE)
    return int(m.group(1)) if m else None
