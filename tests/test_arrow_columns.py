"""Columns cross between pyarrow and NumPy through their buffers, and reading a table does
not import pandas (0.25 s to import and more to tear down, on every run, when installed)."""

import io
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pytest

from ae_jax.data.cells import numpy_of, strings_array, take


def _csv(text: bytes, types: dict) -> pa.Table:
    return pacsv.read_csv(
        io.BytesIO(text), convert_options=pacsv.ConvertOptions(column_types=types)
    )


def test_numbers_with_nulls_slices_and_chunks():
    t = _csv(
        b"x,n,b\n1.5,4,true\n,5,false\n3,6,true\n",
        {"x": pa.float64(), "n": pa.int64(), "b": pa.bool_()},
    )
    np.testing.assert_array_equal(numpy_of(t["x"], np.nan), [1.5, np.nan, 3.0])
    np.testing.assert_array_equal(numpy_of(t["x"].slice(1), np.nan), [np.nan, 3.0])
    assert numpy_of(t["n"]).dtype == np.int64
    np.testing.assert_array_equal(numpy_of(t["n"].slice(1, 2)), [5, 6])
    np.testing.assert_array_equal(numpy_of(t["b"]), [True, False, True])
    np.testing.assert_array_equal(numpy_of(t["b"].slice(1)), [False, True])
    chunked = pa.chunked_array([t["n"].chunk(0), t["n"].chunk(0).slice(2)])
    np.testing.assert_array_equal(numpy_of(chunked), [4, 5, 6, 6])
    assert numpy_of(pa.chunked_array([], pa.float64())).shape == (0,)
    # nulls where the caller expects none are an error, never garbage
    with pytest.raises(ValueError, match="1 null"):
        numpy_of(t["x"])
    # float32 and a fill into an integer column
    f32 = pc.cast(t["x"], pa.float32())
    np.testing.assert_array_equal(numpy_of(f32, np.nan), np.float32([1.5, np.nan, 3.0]))
    codes = pc.dictionary_encode(pa.chunked_array([strings_array(["a"]), pa.nulls(1, pa.string())]))
    np.testing.assert_array_equal(numpy_of(codes.chunk(1).indices, -1), [-1])
    # the same answers as pyarrow's own conversion
    for col in (t["x"], t["n"], t["b"]):
        np.testing.assert_array_equal(numpy_of(col, np.nan), col.to_numpy())


def test_strings_and_take():
    texts = ["a", "", "é ü", "12.5"]
    arr = strings_array(texts)
    assert arr.to_pylist() == texts
    assert strings_array([]).to_pylist() == []
    assert take(pa.chunked_array([arr]), np.array([3, 0])).to_pylist() == ["12.5", "a"]
    assert pc.cast(strings_array(["1", "2e3"]), pa.float64()).to_pylist() == [1.0, 2000.0]


def test_reading_a_table_does_not_import_pandas(tmp_path):
    path = tmp_path / "t.csv"
    rows = ["num,cat,flag,gap"] + [
        f"{i},{'abc'[i % 3]},{i % 2 == 0},{'' if i % 5 else i}" for i in range(50)
    ]
    path.write_text("\n".join(rows) + "\n")
    code = (
        "import sys\n"
        "from ae_jax.config import default_config\n"
        "from ae_jax.data import load_dataset\n"
        "c = default_config().data\n"
        f"c.path = {str(path)!r}\n"
        "c.missing = 'impute'\n"
        "ds = load_dataset(c)\n"
        "assert ds.num_features > 3, ds.columns\n"
        "print('pandas' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False"
