"""Column kinds, encoding and scaling: the `Preprocessor` fitted on the training split.

Categories become ordinal codes or one-hot columns, true/false 1/0, missing values are refused
or imputed (data.missing), every output column is scaled with statistics of the TRAIN rows
only. The fitted `Preprocessor` (saved as JSON) encodes new files as the training data was.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import numpy as np

from ae_jax.data import category_checks, cells, column_checks, spellings, vocabulary
from ae_jax.data import columns as col_lib
from ae_jax.data import scaling as scaling_lib
from ae_jax.data.cells import NA_VALUES, THOUSANDS, Cells, quote_names
from ae_jax.data.missing_values import MISSING, impute_value, log_imputed, missing_error
from ae_jax.data.tables import CATEGORICAL, SCALING, Table, as_text, named_table
from ae_jax.errors import UserError, check_choice


class Preprocessor:
    """Encodes raw columns (categories, booleans) and scales them with train statistics.

    The vocabulary of a categorical column is its categories in the training split, most
    frequent first (ties: first appearance), then an UNSEEN slot for categories the training
    split never showed (validation rows, new files): the encoding depends on counts, never on
    spelling. Scaling statistics use train rows only; one-hot and true/false outputs are 0/1
    indicators and never scaled.

    Attributes:
        input_columns: raw column names expected in a table (label excluded unless kept).
        columns: output feature names; one-hot columns are named "COLUMN=value".
        kinds: "numeric", "boolean" or "categorical", one per input column.
        categories: vocabulary per categorical column (see above; files written before version
            3 hold the sorted vocabulary of the whole column, without the UNSEEN slot).
        categorical: "ordinal" or "onehot".
        scaling: "minmax", "standard" or "none".
        offset, scale: per output column; output = (encoded - offset) / scale.
        label_column: label column dropped from tables passed to `transform` ("" if none).
        threshold: None, or the value above which a scaled output becomes 1 and else 0 (the
            "fixed" binarisation of image sets, applied to new files too).
        na_values: text cells that are missing values (NaN in number arrays is, too).
        missing: how training treated missing values: "error", "drop" or "impute".
        fill: with "impute": per input column, the value a missing cell gets (a number, or the
            category), fitted on the training split and applied to new files alike.
        thousands: thousands separator read inside numbers ("" = none).
        pixel_max: > 0 for pixel data, whole intensities 0..pixel_max (divided by it): new
            rows must hold such intensities too (images already divided would be divided again).
        span: an image array's training (lowest, highest) value in its units, else None.
        ranges: a table's training (lowest, highest) encoded value per output column, else None.
    """

    def __init__(
        self,
        input_columns: Sequence[str],
        kinds: Sequence[str],
        categories: Mapping[str, Sequence[str]],
        categorical: str = "ordinal",
        scaling: str = "minmax",
        offset: Sequence[float] | np.ndarray | None = None,
        scale: Sequence[float] | np.ndarray | None = None,
        label_column: str = "",
        threshold: float | None = None,
        *,
        na_values: Sequence[str] = NA_VALUES,
        missing: str = "error",
        fill: dict[str, float | str] | None = None,
        thousands: str = "",
        pixel_max: int = 0,
        span: Sequence[float] | None = None,
    ):
        self.input_columns, self.kinds = list(input_columns), list(kinds)
        self.pixel_max = int(pixel_max)
        self.threshold = None if threshold is None else float(threshold)
        self.categories = {k: [str(v) for v in vs] for k, vs in categories.items()}
        self.categorical, self.scaling, self.label_column = categorical, scaling, label_column
        self.na_values, self.missing = tuple(str(v) for v in na_values), missing
        self.fill, self.thousands = dict(fill or {}), thousands
        self.span = None if span is None else (float(span[0]), float(span[1]))
        self.columns: list[str] = []
        for name, kind in zip(self.input_columns, self.kinds, strict=True):
            onehot = kind == "categorical" and categorical == "onehot"
            self.columns += [f"{name}={v}" for v in self.categories[name]] if onehot else [name]
        d = len(self.columns)
        self.offset = np.zeros(d) if offset is None else np.asarray(offset, dtype=np.float64)
        self.scale = np.ones(d) if scale is None else np.asarray(scale, dtype=np.float64)
        self.ranges: np.ndarray | None = None  # (2, d): `fit_scaling`'s, or preprocessor.json's
        if self.offset.shape != (d,) or self.scale.shape != (d,):
            raise UserError(
                f"preprocessor: offset and scale need {d} values, one per output "
                f"column; got {self.offset.shape} and {self.scale.shape}"
            )

    @property
    def num_features(self) -> int:
        return len(self.columns)

    @classmethod
    def fit(
        cls,
        table: Table,
        train_rows: Sequence[int] | np.ndarray,
        *,
        categorical: str = "ordinal",
        scaling: str = "minmax",
        label_column: str = "",
        **options: Any,
    ) -> Preprocessor:
        """Infers column kinds from `table` and fits scaling on its `train_rows`; `options`:
        na_values, missing, thousands, max_categories, categorical_columns (see `fit_encoding`)."""
        return cls.fit_transform(
            table, np.asarray(train_rows), categorical, scaling, label_column, **options
        )[0]

    @classmethod
    def fit_transform(
        cls,
        table: Table,
        train_rows: np.ndarray,
        categorical: str,
        scaling: str,
        label_column: str,
        **options: Any,
    ) -> tuple[Preprocessor, np.ndarray]:
        """`fit_encoding`, then the scaling statistics of the train rows."""
        p, encoded, _ = cls.fit_encoding(
            table, train_rows, categorical, scaling, label_column, **options
        )
        p.fit_scaling(encoded, np.asarray(train_rows), table.source)
        return p, encoded

    @classmethod
    def fit_encoding(
        cls,
        table: Table,
        train_rows: np.ndarray,
        categorical: str,
        scaling: str,
        label_column: str,
        *,
        na_values: Sequence[str] = NA_VALUES,
        missing: str = "error",
        thousands: str = "",
        max_categories: int = 1000,
        categorical_columns: Sequence[str] = (),
    ) -> tuple[Preprocessor, np.ndarray, np.ndarray | None]:
        """Infers the column kinds (those in `categorical_columns` are categorical, numbers or not),
        fits imputation on `train_rows` (missing="impute"), and returns the unscaled Preprocessor,
        the (N, num_features) float64 encoding and which cells were imputed (see `_encode`)."""
        check_choice("data.categorical", categorical, CATEGORICAL)
        check_choice("data.scaling", scaling, SCALING)
        check_choice("data.missing", missing, MISSING)
        check_choice("data.thousands", thousands, THOUSANDS)
        category_checks.check_categorical_columns(table, categorical_columns)
        named = {*categorical_columns, *table.categorical}  # the file's own too
        columns = [  # categories are texts as the file writes them, as `_encode` reads them
            Cells(table.text(name) if name in named else col, thousands)
            for name, col in zip(table.columns, table.values, strict=True)
        ]
        # Parsing (pyarrow casts, dictionary encodings) releases the GIL: a column per thread.
        with ThreadPoolExecutor(max_workers=max(1, min(len(columns), os.cpu_count() or 1))) as pool:
            masks = list(pool.map(lambda c: c.missing(na_values), columns))
        kinds, categories = [], {}
        decimals = lambda: column_checks.decimal_comma_columns(table, columns, masks, named)
        for name, column, mask in zip(table.columns, columns, masks, strict=True):
            kind, vocab = col_lib.infer_kind(table, name, column, mask, name in named, decimals)
            if vocab is not None:
                categories[name] = vocabulary.ordered_vocabulary(
                    table, name, column, mask, np.asarray(train_rows)
                )
            if kind != "numeric":
                column.release("fast", "parsed")  # not needed again
            kinds.append(kind)
        category_checks.say_if_one_category(table, categories)
        p = cls(
            table.columns,
            kinds,
            categories,
            categorical,
            scaling,
            label_column=label_column,
            na_values=na_values,
            missing=missing,
            thousands=thousands,
        )
        category_checks.say_case_variants(table, p.categories)
        if categorical == "onehot":
            category_checks.check_one_hot(
                table, p.categories, p.input_columns, p.columns, max_categories, categorical_columns
            )
        rows = np.asarray(train_rows) if missing == "impute" else None
        return p, *p._encode(table, masks, rows, columns)

    def fit_scaling(
        self, encoded: np.ndarray, train_rows: np.ndarray, source: str, channels: int = 0
    ) -> None:
        """Sets `offset`, `scale` and `ranges` from the encoding's train rows (`source` names
        the data in errors; `channels` > 0: an image's pixels, scaled per channel, and `span`);
        refuses columns whose scaling is not finite (`scaling.fit`)."""
        self.offset, self.scale, ranges = scaling_lib.fit(
            encoded, train_rows, self.scaling, self.output_kinds(), self.columns, source, channels
        )
        if channels:  # an image's units, whatever the scaling (data.scaling='none' too): the
            # range its pixels share (their channels' ranges, which `fit` pooled)
            self.span = (float(ranges[0].min()), float(ranges[1].max()))
        self.ranges = None if channels else ranges

    def output_kinds(self) -> list:
        """Per output column: "numeric", "indicator" (one-hot or true/false, 0/1), or the
        vocabulary size n of an ordinal code (codes 0 .. n - 1)."""
        out: list[str | int] = []
        for name, kind in zip(self.input_columns, self.kinds, strict=True):
            if kind == "categorical" and self.categorical == "onehot":
                out += ["indicator"] * len(self.categories[name])
            elif kind == "categorical":
                out.append(len(self.categories[name]))
            else:
                out.append("indicator" if kind == "boolean" else "numeric")
        return out

    def layout(self) -> tuple[tuple[str, str, int, int], ...]:
        """(name, kind, first output column, width) per input column: what a per-column
        likelihood (loss.recon='mixed') and the per-column evaluation read. kind: "numeric",
        "boolean", "categorical" (one-hot block; UNSEEN last since version 3) or "ordinal"."""
        out, j = [], 0
        for name, kind in zip(self.input_columns, self.kinds, strict=True):
            onehot = kind == "categorical" and self.categorical == "onehot"
            width = len(self.categories[name]) if onehot else 1
            named = "categorical" if onehot else ("ordinal" if kind == "categorical" else kind)
            out.append((name, named, j, width))
            j += width
        return tuple(out)

    def _as_table(self, data: Table | np.ndarray | Sequence[Sequence[Any]]) -> Table:
        """Puts the input's columns in training order, or says which columns do not match."""
        n = len(self.input_columns)
        trained = f"the model was trained on {n} columns ({quote_names(self.input_columns)})"
        if isinstance(data, Table):
            # A label column (the trained one, or one read_table attached) is not a feature.
            labels = {self.label_column, data.default_label} - set(self.input_columns) - {""}
            given = [c for c in data.columns if c not in labels]
            missing = [c for c in self.input_columns if c not in given]
            extra = [c for c in given if c not in self.input_columns]
            if names := spellings.respelled(data.columns, extra, missing):  # 'é' as e + accent
                return self._as_table(dataclasses.replace(data, columns=names))
            if (missing or extra) and not data.named and len(given) == n:  # by position
                given_at = [data.columns.index(c) for c in given]
                return dataclasses.replace(
                    data,
                    columns=list(self.input_columns),
                    values=[data.values[i] for i in given_at],
                )
            if (missing or extra) and not data.named:  # an array: its columns have no names
                raise UserError(f"{trained}; {data.source} has {len(given)} columns, by position")
            if missing or extra:
                # cut short: a 784-pixel table's names made a 20,000-character error
                parts = ([f"missing {quote_names(missing)[1:-1]}"] if missing else []) + (
                    [f"extra {quote_names(extra)[1:-1]}"] if extra else []
                )
                label = [c for c in data.columns if c in labels][:1]  # left out: no feature
                besides = f" besides the label {label[0]!r}" if label else ""
                same = spellings.same_count_hint(given, n, data.file is not None)
                raise UserError(
                    f"{trained}; {data.source} has {len(given)}{besides}: {'; '.join(parts)}; "
                    f"expected those columns in any order (add missing ones, drop extra ones{same})"
                )
            order = [data.columns.index(c) for c in self.input_columns]
            return dataclasses.replace(
                data, columns=list(self.input_columns), values=[data.values[i] for i in order]
            )
        if (named := named_table(data)) is not None:  # a data frame, an Arrow table: by name
            return self._as_table(named)
        try:
            arr = np.asarray(data)
        except ValueError as e:  # a ragged list of rows
            raise UserError(f"the input rows cannot form an array ({e}); {trained}") from None
        shape = arr.shape  # (as given: a probe's (8, 12, 10, 3) was said as (8, 360))
        if arr.ndim > 2 and math.prod(arr.shape[1:]) == n:  # images (N, H, W[, C]), as in .npy
            arr = arr.reshape(len(arr), n)
        if arr.ndim != 2 or arr.shape[1] != n or arr.dtype.kind not in "biufSUOT":
            what = "real numbers, true/false or raw strings"  # (a dtype alone wrong: said so)
            one = f" (one {'row' if arr.ndim < 2 else 'image'}: x.reshape(1, -1))" * (arr.size == n)
            wrong = f"{what}, not that dtype" if arr.ndim == 2 and arr.shape[1] == n else ""
            said = wrong or f"shape (N, {n}) of {what}{one}; {trained}"
            raise UserError(
                f"the input array has shape {shape} and dtype {arr.dtype}; expected {said}"
            )
        where, values = "the input array", list(as_text(arr, "the input array").T)
        for name, col in zip(self.input_columns, values, strict=True):
            cells.check_cells(f"{where}'s column {name!r}", col)
        return Table(where, list(self.input_columns), values)

    def _encode(
        self,
        table: Table,
        masks: list[np.ndarray] | None = None,
        impute_rows: np.ndarray | None = None,
        columns: list[Cells] | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """(N, num_features) float64, and which cells were missing and imputed ((N, input
        columns) bool; None when none was). Fitting passes the missing-value `masks` and
        `columns` it already has, and `impute_rows` to fit `fill` on (data.missing='impute')."""
        # Column-major: a column's pages are touched when written, as its parsed numbers go.
        out = np.empty((table.num_rows, self.num_features), order="F")
        j, fitting, imputed = 0, masks is not None, None
        for i, (name, col, kind) in enumerate(
            zip(table.columns, table.values, self.kinds, strict=True)
        ):
            if kind == "categorical" and not fitting and not cells.is_text(col):
                # Categories are texts: "007", not 7.0; True as training spelt it ("TRUE").
                col = cells.bool_words(table.text(name), self.categories[name])
            column = columns[i] if columns else Cells(col, self.thousands)
            mask = masks[i] if masks is not None else column.missing(self.na_values)
            count = int(mask.sum())
            if count and impute_rows is None and name not in self.fill:
                raise missing_error(table, i, col, mask, masks, self, trained=not fitting)
            vocab = self.categories.get(name)
            x = col_lib.column_values(table, name, column, kind, vocab, mask)
            if impute_rows is not None:
                self.fill[name] = impute_value(
                    table, name, kind, vocab, x, mask, impute_rows, column, self.na_values
                )
            column.release()
            if count:
                log_imputed(table.source, name, kind, mask, self.fill[name], not fitting)
                if imputed is None:
                    imputed = np.zeros((table.num_rows, len(table.columns)), bool)
                imputed[:, i] = mask
                fill = self.fill[name]
                if kind == "categorical":
                    assert vocab is not None  # a categorical column has its vocabulary
                    x[mask] = vocab.index(cast(str, fill))  # a category's fill is its text
                else:
                    x[mask] = fill
            if kind == "categorical" and self.categorical == "onehot":
                assert vocab is not None  # a categorical column has its vocabulary
                out[:, j : j + len(vocab)] = 0.0
                out[np.arange(len(x)), j + x.astype(np.int64)] = 1.0
                j += len(vocab)
            else:
                out[:, j] = x
                j += 1
        return out, imputed

    def scale_encoded(
        self, encoded: np.ndarray, source: str = "", column: int | None = None
    ) -> np.ndarray:
        """Scaled float32 features of encoded rows (N, D), or of the values (N,) of output
        column `column`; refuses values float32 cannot hold."""
        if column is None:  # a column at a time: (N, D) float64 temporaries took 12 s, 2.6 GB
            out = np.empty(encoded.shape, np.float32)  # (of 2,000,000 rows x 81 features)
            for j in range(encoded.shape[-1]):
                out[..., j] = self.scale_encoded(encoded[..., j], source, j)
            return out
        with np.errstate(over="ignore", invalid="ignore"):
            x = ((encoded - self.offset[column]) / self.scale[column]).astype(np.float32)
        if self.threshold is None and not np.isfinite(x).all():
            at, j = tuple(int(v) for v in np.argwhere(~np.isfinite(x))[0]), column
            raise UserError(
                f"{source or 'the data'}: column {self.columns[j]!r} has value "
                f"{encoded[at]:.6g}, which scaled (offset {self.offset[j]:.6g}, scale "
                f"{self.scale[j]:.6g}) is not finite in float32 (largest 3.4e38); expected "
                "values the training data's scaling maps into float32: rescale the column (e.g. "
                "change its units), use another data.scaling, or drop it"
            )
        return x if self.threshold is None else (x > self.threshold).astype(np.float32)

    def transform(self, data: Table | np.ndarray | Sequence[Sequence[Any]]) -> np.ndarray:
        """Encodes and scales raw rows: a `Table` or a data frame (columns matched by name; the
        label column ignored) or an array / list of rows in `input_columns` order (numbers,
        or text: str or UTF-8 bytes). Returns (N, num_features) float32."""
        return self.transform_imputed(data)[0]

    def transform_imputed(self, data) -> tuple[np.ndarray, np.ndarray | None]:
        """`transform`, and which cells of `data` were missing and imputed with `fill`: (N,
        len(input_columns)) bool, or None when none was."""
        table = self._as_table(data)
        encoded, imputed = self._encode(table)
        if self.pixel_max:
            scaling_lib.check_pixels(encoded, self.pixel_max, self.columns, table)
        return self.scale_encoded(encoded, table.source), imputed

    def inverse_scale(self, x: np.ndarray) -> np.ndarray:
        """Undoes the scaling only (the result is in encoded space), for (..., D) arrays."""
        expected = f"inverse_scale: expected an array of numbers of shape (..., {len(self.scale)})"
        try:
            x = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError) as e:  # text, ragged rows, None
            raise UserError(f"{expected}; got values that are not: {e}") from None
        if x.ndim == 0 or x.shape[-1] != self.num_features:
            raise UserError(f"{expected}; got shape {x.shape}")
        return (x * self.scale + self.offset).astype(np.float32)
