"""Files as users have them, read as they mean: a numeric column with a few notes among its
numbers, a file without a header row or with spaces between its cells, names and categories in
another Unicode spelling, zip codes a reader turned into numbers. Small files in tmp_path."""

import unicodedata

import numpy as np
import pandas as pd
import pytest

import ae_jax
from ae_jax import data, experiment
from ae_jax.commands import encode
from ae_jax.errors import UserError
from ae_jax.evaluation import evaluate
from tests.bad_inputs import _cfg
from tests.test_data import cfg


def load(path, **kw):
    return data.load_dataset(cfg(path=str(path), **kw))


def test_numbers_beside_a_few_words_are_no_silent_categories(tmp_path, caplog):
    """Ages beside 'unknown' and 'refused' were categories coded by frequency, without a word
    (only marker words alone were refused): with many distinct numbers, refused; a few distinct
    numbers beside words (sizes, ratings) stay categories, with a warning naming both fixes."""
    rng = np.random.default_rng(9)
    age = rng.integers(18, 80, 200).astype(object)
    age[rng.random(200) < 0.15], age[rng.random(200) < 0.05] = "unknown", "refused"
    pd.DataFrame({"a": rng.normal(size=200), "age": age}).to_csv(tmp_path / "a.csv", index=False)
    said = r"'age' cannot be encoded: \d+ of its 200 cells are numbers, but these are not: .*"
    with pytest.raises(UserError, match=said + "if its values are categories, name it in data."):
        load(tmp_path / "a.csv")
    na = ("unknown", "refused")
    assert load(tmp_path / "a.csv", na_values=na, missing="drop").preprocessor.kinds == [
        "numeric",
        "numeric",
    ]
    named = load(tmp_path / "a.csv", categorical_columns=("age",))
    assert named.preprocessor.kinds == ["numeric", "categorical"]

    rating = rng.integers(1, 6, 200).astype(object)
    rating[rng.random(200) < 0.2] = "not rated"
    pd.DataFrame({"a": rng.normal(size=200), "r": rating}).to_csv(tmp_path / "r.csv", index=False)
    caplog.set_level("WARNING")
    assert load(tmp_path / "r.csv").preprocessor.kinds == ["numeric", "categorical"]
    assert "column 'r' is categorical: most of its cells are numbers (5 distinct)" in caplog.text
    assert "'not rated'" in caplog.text and "data.na_values" in caplog.text
    caplog.clear()
    load(tmp_path / "r.csv", categorical_columns=("r",))
    assert "is categorical: most of its cells" not in caplog.text


def test_numbers_beside_many_words_are_no_silent_categories(tmp_path, caplog):
    """Beside more than three words the rule above did not look: lab values beside '<0.1',
    '>10', 'QNS', 'hemolyzed', 'clotted' were categories, silently (a probe), and ratings
    beside four words too. The same refusal and the same warning as beside a few words."""
    rng = np.random.default_rng(8)
    notes = ["<0.1", ">10", "QNS", "hemolyzed", "clotted"]
    crp = [f"{x:.1f}" if rng.random() < 0.6 else rng.choice(notes) for x in rng.uniform(1, 4, 300)]
    pd.DataFrame({"age": rng.integers(20, 80, 300), "crp": crp}).to_csv(
        tmp_path / "l.csv", index=False
    )
    said = r"'crp' cannot be encoded: \d+ of its 300 cells are numbers, but these are not: .*"
    with pytest.raises(UserError, match=said + "if its values are categories, name it in data."):
        load(tmp_path / "l.csv")
    named = load(tmp_path / "l.csv", categorical_columns=("crp",))
    assert named.preprocessor.kinds[-1] == "categorical"
    rating = rng.integers(1, 6, 200).astype(object)
    for word, share in (("not rated", 0.1), ("refused", 0.1), ("n/a", 0.05), ("skipped", 0.05)):
        rating[rng.random(200) < share] = word
    pd.DataFrame({"a": rng.normal(size=200), "r": rating}).to_csv(tmp_path / "r.csv", index=False)
    caplog.set_level("WARNING")
    assert load(tmp_path / "r.csv").preprocessor.kinds == ["numeric", "categorical"]
    assert "column 'r' is categorical: most of its cells are numbers (5 distinct)" in caplog.text


def test_true_false_beside_a_stray_word_is_refused_not_made_categories(tmp_path):
    """TRUE/FALSE beside two 'unknown' cells became a categorical column of ordinal codes
    FALSE 0, TRUE 0.33, without a word (a probe), where a numeric column's stray text is
    refused: refused too, naming the cells and the fixes. True/false beside words in a tenth
    of the cells or more (a third answer) stays categorical."""
    rng = np.random.default_rng(11)
    b = rng.choice(["TRUE", "FALSE"], 60).astype(object)
    b[10] = b[11] = "unknown"
    pd.DataFrame({"x": rng.normal(size=60), "b": b}).to_csv(tmp_path / "b.csv", index=False)
    with pytest.raises(
        UserError,
        match=r"column 'b' holds true/false values, but these cells are not: row 11 \(line 12\) "
        r"'unknown', row 12 \(line 13\) 'unknown'; expected true or false .* data.na_values .* "
        r"name it in data.categorical_columns",
    ):
        load(tmp_path / "b.csv")
    assert load(tmp_path / "b.csv", na_values=("unknown",), missing="drop").preprocessor.kinds == [
        "numeric",
        "boolean",
    ]
    assert load(tmp_path / "b.csv", categorical_columns=("b",)).preprocessor.kinds[1] == (
        "categorical"
    )
    # Counts 0-3 beside one 'FALSE' are numbers with a stray word: the numeric refusal names
    # 'FALSE', not the 2s and 3s as cells that are no true/false (a review).
    counts = np.array(["0"] * 60 + ["1"] * 33 + ["2"] * 4 + ["3"] * 2 + ["FALSE"], dtype=object)
    pd.DataFrame({"x": rng.normal(size=100), "n": counts}).to_csv(tmp_path / "n.csv", index=False)
    with pytest.raises(UserError, match=r"'n' cannot be encoded: 99 of its 100 cells .*'FALSE'"):
        load(tmp_path / "n.csv")
    b[10:20] = "maybe"  # a sixth of the cells: a third answer
    pd.DataFrame({"x": rng.normal(size=60), "b": b}).to_csv(tmp_path / "m.csv", index=False)
    assert load(tmp_path / "m.csv").preprocessor.kinds == ["numeric", "categorical"]


def test_a_first_row_of_data_is_refused_where_the_file_has_text_columns(tmp_path):
    """A file without a header lost its first row, read as the names '-0.803', '0', 'green'
    (only a first row of numbers alone was refused). Names that are numbers over columns of
    numbers are kept where another name is no cell of its column (years beside 'region')."""
    rng = np.random.default_rng(9)
    colour = rng.choice(["red", "green"], 200)
    lines = [f"{rng.normal():.3f},{i % 7},{colour[i]}" for i in range(200)]
    (tmp_path / "n.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match=r"the first row \['-?\d.\d+', '0', '\w+'\] looks like"):
        load(tmp_path / "n.csv")
    (tmp_path / "y.csv").write_text(
        "region,2019,2020\n"
        + "".join(f"{['north', 'south'][i % 2]},{i},{2 * i}\n" for i in range(40))
    )
    assert load(tmp_path / "y.csv").columns == ["region", "2019", "2020"]


def test_cells_separated_by_spaces_are_refused_not_one_column(tmp_path):
    """'a n city' over '0.5 1 x' was one categorical column of 40 categories (a warning of an
    identifier, then training)."""
    rng = np.random.default_rng(1)
    body = "".join(f"{rng.normal():.3f} {i} {rng.choice(['x', 'y'])}\n" for i in range(40))
    (tmp_path / "s.csv").write_text("a n city\n" + body)
    with pytest.raises(UserError, match=r"its cells are separated by spaces .* split into 3"):
        load(tmp_path / "s.csv")
    assert load(tmp_path / "s.csv", delimiter=" ").columns == ["a", "n", "city"]
    # One column of words, as many in every cell as in its name: no field of numbers, so a
    # column (whose names are categories), not cells separated by spaces.
    names = "".join(f"{rng.choice(['Ann', 'Bo'])} {rng.choice(['Li', 'Ng'])}\n" for _ in range(40))
    (tmp_path / "w.csv").write_text("full name\n" + names)
    assert load(tmp_path / "w.csv").columns == ["full name"]


def test_names_and_categories_in_another_unicode_spelling_are_the_trained_ones(tmp_path):
    """'café' written as 'e' and a combining accent (NFD, as macOS writes it) is the text
    trained on: a column so named was 'missing 'prix_café'; extra 'prix_café'', and such
    categories all unseen, with a warning listing what looked like the training categories."""
    nfc = lambda s: unicodedata.normalize("NFC", s)
    nfd = lambda s: unicodedata.normalize("NFD", s)
    rng = np.random.default_rng(17)
    city = rng.choice(["café", "São Paulo", "Zürich"], 40)

    def write(name, head, cell, n=40):
        rows = "".join(f"{i / 7:.3f},{i},{cell(city[i])}\n" for i in range(n))
        (tmp_path / name).write_text(f"a,{head('prix_café')},city\n" + rows)
        return data.read_table(str(tmp_path / name))

    write("nfc.csv", nfc, nfc)
    p = load(tmp_path / "nfc.csv").preprocessor
    expected = p.transform(write("same.csv", nfc, nfc, 6))
    assert expected[:, 2].min() >= 0 and len(set(expected[:, 2])) > 1
    np.testing.assert_array_equal(p.transform(write("h.csv", nfd, nfc, 6)), expected)
    np.testing.assert_array_equal(p.transform(write("c.csv", nfc, nfd, 6)), expected)


def test_a_category_read_without_its_leading_zeros_is_said_so(tmp_path, caplog):
    """pandas reads zip codes 02134 as the number 2134, an unseen category: the warning listed
    '2134' without saying it is '02134' but for the zeros a reader dropped."""
    zips = ["02134", "00501", "10001"]
    body = "".join(f"{i / 3:.3f},{zips[i % 3]}\n" for i in range(30))
    (tmp_path / "z.csv").write_text("a,zip\n" + body)
    p = load(tmp_path / "z.csv", categorical_columns=("zip",)).preprocessor
    caplog.set_level("WARNING")
    p.transform(pd.read_csv(tmp_path / "z.csv").head(3))  # zip: 2134, 501, 10001 (int64)
    assert "a training category without its leading zeros: '2134' (training: '02134')" in (
        caplog.text
    )


def test_a_one_column_file_of_decimal_commas_and_a_compressed_file_are_told_their_fix(tmp_path):
    """'value' over '0,346' said only 'line 2 has 2 cells but the header has 1 columns' (the
    decimal comma hint was given for files of several columns alone); a .csv.gz, only
    'unsupported file type'."""
    (tmp_path / "v.csv").write_text("value\n0,346\n1,5\n2,25\n")
    said = r"line 2 \(data row 1\) has 2 cells .* '0,346' reads as one number written with a "
    with pytest.raises(UserError, match=said + "decimal comma: save the file with decimal"):
        load(tmp_path / "v.csv")
    (tmp_path / "v.csv.gz").write_bytes(b"\x1f\x8b")
    with pytest.raises(UserError, match=r"'.gz'; .* a compressed file: decompress it first"):
        load(tmp_path / "v.csv.gz")


def test_a_new_npz_without_the_runs_array_names_the_setting_that_picks_another(tmp_path):
    """A run trained on x_train of an .npz, given a file holding x_test alone: `encode` said to
    name the array with --npz_key; `evaluate --data` and `load(...).features` said only
    "data.npz_key 'x_train' is not an array", a setting they cannot change."""
    x = np.random.default_rng(0).uniform(size=(40, 5)).astype(np.float32)
    np.savez(tmp_path / "train.npz", x_train=x, y_train=np.arange(40) % 2)
    experiment.train_and_evaluate(
        _cfg(data__path=str(tmp_path / "train.npz"), data__npz_key="x_train"), str(tmp_path / "r")
    )
    np.savez(tmp_path / "test.npz", x_test=x[:6], y_test=np.arange(6) % 2)
    said = r"^{}the run's data.npz_key \({} names another array\) 'x_train' is not an array in "
    with pytest.raises(UserError, match=said.format("", "npz_key=")):
        ae_jax.load(str(tmp_path / "r")).features(str(tmp_path / "test.npz"))
    with pytest.raises(UserError, match=said.format("", "--npz_key")):
        evaluate.evaluate_workdir(str(tmp_path / "r"), str(tmp_path / "test.npz"))
    with pytest.raises(UserError, match=said.format("", "--npz_key")):
        encode.encode_file(str(tmp_path / "r"), str(tmp_path / "test.npz"), str(tmp_path / "c.npy"))
    codes = encode.encode_file(
        str(tmp_path / "r"), str(tmp_path / "test.npz"), str(tmp_path / "c.npy"), npz_key="x_test"
    )
    assert codes.shape[0] == 6
