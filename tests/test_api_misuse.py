"""The Python API as a notebook uses it: wrong types and shapes get a UserError naming what
is expected (not a traceback from inside JAX or os.path), and `load` says when a run is not
finished."""

import json
import logging
import os
import shutil
import warnings

import ml_collections
import numpy as np
import pytest

import ae_jax
from ae_jax import data as data_lib
from ae_jax import sweeps
from ae_jax.commands import encode as encode_cli
from ae_jax.configs import seed_sparse, seed_vae
from ae_jax.errors import UserError
from ae_jax.evaluation import evaluate, export


def _config(vae: bool = False):
    c = (seed_vae if vae else seed_sparse).get_config()
    c.data.name, c.train.epochs, c.train.figures, c.eval.at_end = "breast_cancer", 1, False, False
    c.train.tensorboard = False
    return c


def _with(**fields):
    """_config() rebuilt from its dict, as from a config.json (no placeholders), with
    section__field values set."""
    c = ml_collections.ConfigDict(_config().to_dict())
    for key, value in fields.items():
        section, field = key.split("__")
        c[section][field] = value
    return c


def _model(**fields):
    m = _config().model
    for k, v in fields.items():
        m[k] = v
    return m


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    run = str(tmp_path_factory.mktemp("api") / "vae")
    ae_jax.train_and_evaluate(_config(vae=True), run)
    return run


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda d: ae_jax.train_and_evaluate(_config().to_dict(), d), "expected an ml_collections"),
        (lambda d: ae_jax.train_and_evaluate(None, d), "expected an ml_collections.ConfigDict"),
        (lambda d: ae_jax.train_and_evaluate(_config(), 3), "expected a directory path"),
        (lambda d: ae_jax.train_and_evaluate(_config(), ""), "expected a directory path"),
        (lambda d: ae_jax.train_group(_config(), [d]), "expected a list of configs"),
        (lambda d: ae_jax.train_group([_config()], d), "and a str"),
        (lambda d: ae_jax.train_group([_config()], [None]), r"workdirs\[0\]: expected a direc"),
        (lambda d: ae_jax.train_together(_config(), {"train.seed": 1}, d), "a list of dicts"),
        (lambda d: ae_jax.train_together({"a": 1}, [{}], d), "expected an ml_collections"),
        (lambda d: ae_jax.train_together(_config(), [{"train.seed": 1}], 7), "directory path"),
        (lambda d: ae_jax.load(123), "expected a directory path, a non-empty str"),
        # A config where the folder goes: its repr (the whole config, 3 KB) was the message.
        (lambda d: ae_jax.load(_config()), r"str or os.PathLike; got a ConfigDict, a config \("),
        (lambda d: ae_jax.load(b"x" * 500), r"got b'x{11}\.\.\.x{13}' \(bytes\)\.$"),
        (lambda d: ae_jax.sweeps.config_diff(_config(), {}), r"got dict \{\} \(a dict: Config"),
        (
            lambda d: ae_jax.train_together(_config(), [{}], d, chunk_size="2"),
            r"chunk_size='2'; expected a whole number >= 0",
        ),
        (lambda d: ae_jax.build_model(_config().model.to_dict(), 30), r"ConfigDict\(d\) makes"),
        (lambda d: ae_jax.build_model(_model(latent_dim=0), 30), "model.latent_dim: got 0"),
        (lambda d: ae_jax.build_model(_model(encoder_widths=(8, 0)), 30), "model.encoder_widt"),
        (
            lambda d: ae_jax.train_together(_config(), [{"train.num_models": 2}], d),
            r"configs\[0\] has train.num_models=2; each config given here is one run",
        ),
        (
            lambda d: ae_jax.train_group([_config(), _config()], [d, d + "/sub"]),
            r"workdirs\[1\] .*/run/sub' lies inside workdirs\[0\]",
        ),
        (
            lambda d: sweeps.run_sweep(_config(), [{"train.seed": 0}], d, shard=(2, 2)),
            r"shard=\(2, 2\): expected \(i, n\) with 0 <= i < n",
        ),
        (
            lambda d: sweeps.run_sweep(_config(), [{"train.seed": 0}], d, shard=(0,)),
            r"shard=\(0,\): expected \(i, n\), two whole numbers",
        ),
        # An API probe's: each of these trained, or failed with a traceback, or did nothing.
        (lambda d: data_lib.read_table(None), r"path: got None; expected a file's path"),
        (lambda d: ae_jax.TrainedModel(None), r"workdir: expected a directory path"),
        (
            lambda d: ae_jax.train_and_evaluate(_with(train__log_seconds=float("inf")), d),
            r"train.log_seconds: got inf; expected a finite number\.$",
        ),
        # Which run's config is wrong, where there are several; a bound's side in words.
        (
            lambda d: ae_jax.train_group(
                [_config(), _with(optim__learning_rate=-1.0)], [d + "/a", d + "/b"]
            ),
            r"configs\[1\] \(workdir '.*/run/b'\): optim.learning_rate: got -1.0; expected a "
            r"finite number > 0.0\.$",
        ),
        (
            lambda d: ae_jax.train_together(
                _config(), [{"train.seed": 1}, {"loss.l1_weight": -1.0}], d
            ),
            r"override 1 \(loss.l1_weight=-1\): loss.l1_weight: got -1.0; expected a finite "
            r"number >= 0.0\.$",
        ),
        (
            lambda d: ae_jax.train_together(
                _config(), [{"_name": "a"}, {"train.seed": 2}, {"_name": "a"}], d
            ),
            r"overrides 0 and 2 give the same run name 'a'",
        ),
        (
            lambda d: ae_jax.train_together(_config(), [{"_name": "../out"}], d),
            r"run 0's name '../out' cannot name a run directory",
        ),
        (
            lambda d: ae_jax.train_together(_config(), [{"_loss.l1_weight": 0.5}], d),
            r"'_loss.l1_weight': a key starting with '_' is a label of the run's name, not the "
            r"field 'loss.l1_weight'",
        ),
        (
            lambda d: sweeps.run_sweep(
                _config(), ({"train.seed": s} for s in [0]), d, max_models=0
            ),
            r"--max_models=0; expected a positive whole number",
        ),
        (
            lambda d: sweeps.run_sweep(_config(), 3, d),
            r"run_sweep: got entries 3; expected a list of dicts",
        ),
        (lambda d: sweeps.run_sweep(_config().to_dict(), [{}], d), r"expected an ml_collections"),
        (  # (True trained as an L1 weight of 1.0, in a run named loss.l1_weight=True)
            lambda d: sweeps.run_sweep(_config(), [{"loss.l1_weight": True}], d),
            r"override loss.l1_weight=True: expected float like the current value .*, got bool",
        ),
        (  # (an AttributeError's traceback)
            lambda d: sweeps.run_sweep(_config(), [{1: 2}, {"train.seed": 1}], d),
            r"sweep entry 0: its key 1 is of type int; expected dotted field names as text",
        ),
        # (no runs: it wrote sweep.json, and a later launch was refused as another base config)
        (lambda d: sweeps.run_sweep(_config(), iter([]), d), r"run_sweep: got no entries"),
        (lambda d: sweeps.run_sweep(_config(), [{}], d, max_models=2.5), r"--max_models=2.5; ex"),
        (
            lambda d: sweeps.run_sweep(_config(), [{}], d, report_metrics="recon/mse"),
            r"report_metrics='recon/mse': expected a list of metric names",
        ),
        (
            lambda d: ae_jax.train_and_evaluate(
                _with(optim__name="sgd", optim__eps=None, optim__nesterov="no"), d
            ),
            r"optim.nesterov: got 'no'; expected True, False or None",
        ),
        (
            lambda d: ae_jax.train_and_evaluate(_with(model__encoder_widths=(np.int64(8),)), d),
            r"\(numpy values, such as np.int64\(8\), are not Python ones: int\(v\) makes one\)",
        ),
    ],
)
def test_wrong_types_are_refused_before_any_work(tmp_path, call, message):
    d = str(tmp_path / "run")
    with pytest.raises(UserError, match=message):
        call(d)
    assert not os.path.exists(d)


def test_numpy_values_in_overrides_are_the_values_they_hold(tmp_path):
    """As in a sweep's entries: np.float32(1e-3) is the L1 weight 0.001, np.int64 a seed (they
    were refused as 'expected float ..., got float32')."""
    (s,) = ae_jax.train_together(
        _config(), [{"loss.l1_weight": np.float32(1e-3), "train.seed": np.int64(1)}], tmp_path
    )
    assert s["status"] == "done"
    assert os.listdir(tmp_path) == ["loss.l1_weight=0.001,train.seed=1"]


def test_k_seeds_into_one_runs_directory_are_refused_naming_both_ways_out(vae_run):
    c = _config(vae=True)
    c.train.num_models = 2
    before = sorted(os.listdir(vae_run))
    with pytest.raises(UserError, match=r"is one run's directory; train.num_models=2 "):
        ae_jax.train_and_evaluate(c, vae_run)  # was: "'.../seed=0' lies inside ..."
    assert sorted(os.listdir(vae_run)) == before


def test_a_dict_config_is_told_how_to_become_one(tmp_path):
    with pytest.raises(UserError, match=r"a dict: ConfigDict\(d\) makes one"):
        ae_jax.train_and_evaluate(_config().to_dict(), str(tmp_path))
    ae_jax.validate(ml_collections.ConfigDict(_config().to_dict()))  # and that works


def test_trained_model_methods_refuse_what_they_cannot_take(vae_run):
    m = ae_jax.load(vae_run)
    assert m.status == "done" and m.diverged_step is None
    n, latent = m.num_features, m.config.model.latent_dim
    for bad in (-1, 0, 2.5, "3", None, True):
        with pytest.raises(UserError, match=r"sample: n=.*expected a whole number >= 1"):
            m.sample(bad)
    for bad in (-1, 1.5, None, "0", 2**31, 2**70):  # 2**70: an OverflowError inside JAX
        with pytest.raises(UserError, match=r"sample: seed: got .*in \[0, 2\*\*31\)"):
            m.sample(2, seed=bad)
    assert m.sample(np.int64(2), seed=3).shape == (2, n)
    with pytest.raises(UserError, match="expected codes as numbers"):
        m.decode(np.array([["a"] * latent]))
    with pytest.raises(UserError, match=r"codes at \(0, 1\) is nan; expected finite"):
        m.decode(np.array([[0.0, np.nan] + [0.0] * (latent - 2)]))
    with pytest.raises(UserError, match=r"codes at \(0, 1\) is None; expected finite"):
        m.decode([[0.0, None] + [0.0] * (latent - 2)])  # (said as nan: None became NaN)
    with pytest.raises(UserError, match=r"features at \(1, 0\) is inf"):
        m.encode_features(np.r_[np.zeros((1, n)), [[np.inf] + [0.0] * (n - 1)]])
    with pytest.raises(
        ae_jax.UserError, match=r"expected features of shape \(N, 30\); got \(30,\)"
    ):
        m.encode_features(np.zeros(n))
    with pytest.raises(UserError, match=r"shape \(30,\).*\(one row: x.reshape\(1, -1\)\)"):
        m.encode(np.zeros(n))
    with pytest.raises(UserError, match="the input rows cannot form an array"):
        m.encode([[0.0] * n, [0.0] * (n - 1)])
    # A data frame's to_dict("records"): was "shape (2,) ... (one row: x.reshape(1, -1))"
    records = [{f"c{j}": 0.0 for j in range(n)}] * 2
    with pytest.raises(UserError, match=r"a list of 2 dicts \(records\); give them as a table:"):
        m.encode(records)
    # A dict of columns: was "the input array has shape () and dtype object" (a probe).
    columns = {f"c{j}": [0.0, 1.0] for j in range(n)}
    with pytest.raises(
        UserError,
        match=rf"^the input rows are a dict of {n} entries; give columns by name as a table: "
        r"pandas.DataFrame\(columns\) or pyarrow.table\(columns\)$",
    ):
        m.encode(columns)
    with pytest.raises(UserError, match="expected values as numbers"):
        m.inverse_scale([["x"] * n])
    with pytest.raises(
        UserError, match=r"expected an array of numbers of shape \(\.\.\., 30\); got val"
    ):
        m.preprocessor.inverse_scale([["x"] * n])  # (public too: was numpy's ValueError)
    with pytest.raises(UserError, match=r"of shape \(\.\.\., 30\); got shape \(2, 29\)"):
        m.preprocessor.inverse_scale(np.zeros((2, n - 1)))
    np.testing.assert_array_equal(m.inverse_scale(np.zeros((2, 3, n))).shape, (2, 3, n))
    for bad in (-1, 10**20):  # -1 was accepted; 10**20 an OverflowError inside JAX
        with pytest.raises(UserError, match=r"^seed: got .*in \[0, 2\*\*31\)"):
            evaluate.evaluate_run(vae_run, seed=bad)


def test_masked_arrays_overflowing_codes_and_npz_arrays_are_named(vae_run, tmp_path):
    """A masked array's mask was dropped (its hidden values encoded as data); a code beyond
    float32 was 'inf, expected finite' (with numpy's overflow warning); an .npz of two arrays
    was told to set data.npz_key, which a loaded model has no way to set."""
    m = ae_jax.load(vae_run)
    n, latent = m.num_features, m.config.model.latent_dim
    rows = np.random.default_rng(0).random((3, n))
    hidden = np.ma.masked_array(rows, mask=np.eye(3, n, dtype=bool))
    with pytest.raises(
        UserError,
        match=r"the input rows: a masked array with 3 masked .*"
        r"rows.astype\(float\).filled\(np.nan\) to have them read as missing values",
    ):
        m.encode(hidden)
    with pytest.raises(UserError, match=r"features: a masked array with 3 masked entries"):
        m.encode_features(hidden)
    np.testing.assert_array_equal(m.encode(np.ma.masked_array(rows)), m.encode(rows))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy RuntimeWarning on the way
        with pytest.raises(UserError, match=r"codes at \(0, 1\) is 1e\+40, beyond float32"):
            m.decode(np.array([[0.0, 1e40] + [0.0] * (latent - 2)]))
    np.savez(tmp_path / "two.npz", a=rows, b=rows[:2])
    with pytest.raises(UserError, match=r"set npz_key= to one of its arrays: \['a', 'b'\]"):
        m.encode(str(tmp_path / "two.npz"))
    with pytest.raises(UserError, match=r"npz_key= 'c' is not an array in"):
        m.encode(tmp_path / "two.npz", npz_key="c")
    np.testing.assert_array_equal(m.encode(tmp_path / "two.npz", npz_key="b"), m.encode(rows[:2]))
    np.testing.assert_array_equal(
        m.reconstruct(tmp_path / "two.npz", npz_key="a"), m.reconstruct(rows)
    )


def test_load_says_a_run_is_unfinished(vae_run, tmp_path, caplog):
    import shutil

    run = str(tmp_path / "copy")
    shutil.copytree(vae_run, run)
    os.remove(os.path.join(run, "summary.json"))  # as a run stopped after its last epoch
    caplog.set_level(logging.WARNING)
    m = ae_jax.load(run)
    assert m.status == "unfinished"  # trained to the end: its last writes are what it lacks
    said = f"{run} has not finished its last writes (eval.json, summary.json: the same command"
    assert said in caplog.text and "has not finished training" not in caplog.text
    with open(os.path.join(run, "config.json")) as f:
        config = json.load(f)
    config["train"]["epochs"] = 3  # as a run stopped before its last epoch
    with open(os.path.join(run, "config.json"), "w") as f:
        json.dump(config, f)
    caplog.clear()
    assert ae_jax.load(run).status == "unfinished"
    assert f"{run} has not finished training (stopped, or training now): its epoch-1" in caplog.text


def test_build_model_is_told_what_it_takes():
    c = _config()
    with pytest.raises(UserError, match=r"expected the config's model section"):
        ae_jax.build_model(c, 30)
    for bad in (0, "30", 2.5, True):
        with pytest.raises(UserError, match=r"num_features=.*a whole number >= 1"):
            ae_jax.build_model(c.model, bad)
    assert isinstance(ae_jax.build_model(c.model, np.int64(30)), ae_jax.Autoencoder)


def _fake_run(path):
    """What makes a directory a run's (`workdir.kind_of`): config.json beside preprocessor.json."""
    os.makedirs(path)
    for name in ("config.json", "preprocessor.json"):
        with open(os.path.join(path, name), "w") as f:
            f.write("{}")


def test_a_run_is_not_written_among_runs_or_a_users_files(tmp_path):
    """A folder of runs (a sweep's runs/, a num_models parent of seed=S/) made a run of it
    unusable for all of them (each then lay inside a run); a folder of the user's files had
    its eval.json and figures replaced. Both are refused before any work; nothing changes."""
    _fake_run(tmp_path / "runs" / "a")
    _fake_run(tmp_path / "k2" / "seed=0")
    for where in ("runs", "k2"):
        with pytest.raises(UserError, match=r"holds runs \(\['(a|seed=0)'\]\); a run .* Pass one"):
            ae_jax.train_and_evaluate(_config(), str(tmp_path / where))
    # A sweep there: no advice to pass one of them, which a sweep refuses (a probe).
    with pytest.raises(
        UserError,
        match=r"a sweep written among them would make them unusable. Pass a new workdir for a "
        r"new sweep \(each of them is a run: `ae-jax train` continues one\)\.$",
    ):
        sweeps.run_sweep(_config(), [{}], str(tmp_path / "k2"))
    mine = tmp_path / "mine"
    (mine / "figures").mkdir(parents=True)
    (mine / "eval.json").write_text('{"my": "own results"}')
    (mine / "data.csv").write_text("a,b\n1,2\n")
    before = sorted(p.name for p in mine.rglob("*"))
    message = r"is a folder of other files \(\['data.csv', 'eval.json', 'figures'\]\), not a"
    with pytest.raises(UserError, match=message):
        ae_jax.train_and_evaluate(_config(), str(mine))
    with pytest.raises(UserError, match=message.replace("run", "sweep")):
        sweeps.run_sweep(_config(), [{}], str(mine))
    assert sorted(p.name for p in mine.rglob("*")) == before
    assert (mine / "eval.json").read_text() == '{"my": "own results"}'
    # Such a folder inside a run's directory (its tb/): that is what is wrong, not its files
    # (the way out named for those, a new folder in it, was refused in turn as inside a run).
    _fake_run(tmp_path / "one")
    (tmp_path / "one" / "tb").mkdir()
    (tmp_path / "one" / "tb" / "events.out").write_text("")
    with pytest.raises(UserError, match=r"one/tb' lies inside '.*/one', a run's direc"):
        ae_jax.train_and_evaluate(_config(), str(tmp_path / "one" / "tb"))
    # What a run holds before it is one (a sweep's claim, a kill before its config) and hidden
    # files are no reason to refuse: such a run trains.
    started = tmp_path / "started"
    (started / "checkpoints").mkdir(parents=True)
    for name in (".lock", "failed.json", ".DS_Store"):
        (started / name).write_text("")
    (summary,) = ae_jax.train_and_evaluate(_config(), str(started))
    assert summary["status"] == "done"


def test_frame_columns_of_dates_complex_numbers_or_lists_are_refused(vae_run):
    """A datetime column was encoded as nanoseconds since 1970 (codes ~6e13), a complex one as
    its real part, and lists in cells raised from inside NumPy."""
    pd = pytest.importorskip("pandas")
    m = ae_jax.load(vae_run)
    frame = pd.DataFrame(np.zeros((3, m.num_features)), columns=m.preprocessor.input_columns)
    first = m.preprocessor.input_columns[0]
    assert m.encode(frame).shape == (3, m.config.model.latent_dim)
    for values, said in (
        (pd.to_datetime(["2020-01-01"] * 3), r"holds dates or times \(datetime64"),
        (np.ones(3, complex), r"holds complex numbers"),
        ([[1.0], [2.0], [3.0]], r"holds lists or arrays in its cells \(e.g. \[1.0\]\)"),
    ):
        bad = frame.copy()
        bad[first] = pd.Series(list(values) if isinstance(values, list) else values)
        with pytest.raises(UserError, match=f"column {first!r} {said}"):
            m.encode(bad)
    # One such cell in an object array of rows, or of an object column (a probe): a list raised
    # NumPy's ValueError, a datetime64 was read as days since 1970 (a feature of 285.75).
    rows = frame.to_numpy(object)
    for cell, said in (
        ([40.5], r"lists or arrays in its cells \(e.g. \[40.5\]\)"),
        (np.datetime64("2020-01-01"), r"dates, time spans or complex numbers in its cells"),
        (np.timedelta64(5, "D"), r"dates, time spans or complex numbers in its cells"),
    ):
        bad_rows, bad = rows.copy(), frame.astype(object)
        bad_rows[1, 0] = bad.iloc[1, 0] = cell
        with pytest.raises(UserError, match=f"the input array's column {first!r} holds {said}"):
            m.encode(bad_rows)
        with pytest.raises(UserError, match=f"the data frame's column {first!r} holds {said}"):
            m.encode(bad)


def test_train_group_refuses_a_dataset_of_other_data_before_any_work(tmp_path):
    """A Dataset loaded for other data settings trained, and the run's config.json named data
    that could not rebuild it (an API probe: the digits under a breast_cancer config)."""
    c, other = _config(), _config()
    other.data.name = "digits"
    digits = data_lib.load_dataset(other.data)
    with pytest.raises(UserError, match=r"data.name 'digits' there, 'breast_cancer' here"):
        ae_jax.train_group([c], [str(tmp_path / "a")], dataset=digits)
    with pytest.raises(UserError, match=r"dataset: got str 'digits'; expected the Data"):
        ae_jax.train_group([c], [str(tmp_path / "a")], dataset="digits")
    assert not (tmp_path / "a").exists()
    own = data_lib.load_dataset(c.data)
    assert ae_jax.train_group([c], [str(tmp_path / "b")], dataset=own)[0]["status"] == "done"


def test_a_workdir_with_a_tilde_is_in_the_home_folder(tmp_path, monkeypatch):
    """'~/runs/x' made a folder named '~' in the current directory (data.path expands it);
    every entry point reads and writes the same folder."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    ae_jax.train_and_evaluate(_config(), "~/runs/x")
    ae_jax.train_group([_config()], ["~/runs/y"])
    evaluate.evaluate_run("~/runs/x", figures=False)
    assert (tmp_path / "home" / "runs" / "x" / "summary.json").exists()
    assert (tmp_path / "home" / "runs" / "y" / "summary.json").exists()
    assert (tmp_path / "home" / "runs" / "x" / "eval.json").exists()  # (eval.at_end was off)
    # The outputs of encode and export too (a shell leaves '~' after '--output=' as it is).
    np.save(tmp_path / "home" / "rows.npy", np.zeros((2, ae_jax.load("~/runs/x").num_features)))
    encode_cli.encode_file("~/runs/x", "~/rows.npy", "~/codes.npy")
    export.export_run("~/runs/x", "~/exported")
    assert (tmp_path / "home" / "codes.npy").exists()
    assert (tmp_path / "home" / "exported" / "encode.jax_export").exists()
    assert not (tmp_path / "~").exists()


def test_labels_and_sweeps_nested_in_sweeps_still_train(tmp_path):
    """A '_' label that names no field stays a label of the run's name; a sweep inside another
    sweep's folder trains its runs (a review: both were refused by this round's checks)."""
    outer = str(tmp_path / "outer")
    sweeps.run_sweep(_config(), [{"_tag": "a", "train.seed": 0}], outer)
    assert os.listdir(os.path.join(outer, "runs")) == ["_tag=a,train.seed=0"]
    inner = sweeps.run_sweep(_config(), [{"train.seed": 1}], os.path.join(outer, "finer"))
    assert inner["counts"]["done"] == 1


def test_a_dataset_loaded_from_the_same_file_spelt_otherwise_is_the_configs(tmp_path, monkeypatch):
    np.savez(tmp_path / "t.npz", x=np.random.default_rng(0).uniform(size=(30, 4)))
    monkeypatch.chdir(tmp_path)
    c = _config()
    c.data.path = "t.npz"
    ds = data_lib.load_dataset(c.data)
    c.data.path = str(tmp_path / "t.npz")
    assert ae_jax.train_group([c], [str(tmp_path / "r")], dataset=ds)[0]["status"] == "done"


def test_no_run_is_written_into_a_sweeps_directory(tmp_path):
    """Only the sweep's own runs/ holds runs: train_together into the sweep's folder wrote
    runs beside sweep.json, which its report and status never list."""
    sweep = str(tmp_path / "sweep")
    sweeps.run_sweep(_config(), [{"train.seed": 0}], sweep)
    with pytest.raises(UserError, match=r"lies inside .*sweep', a sweep's directory"):
        ae_jax.train_together(_config(), [{"train.seed": 5}], sweep)
    with pytest.raises(UserError, match=r"lies inside .*sweep', a sweep's directory"):
        ae_jax.train_and_evaluate(_config(), os.path.join(sweep, "x"))
    names = sorted(n for n in os.listdir(sweep) if not n.startswith("."))
    assert names == ["runs", "sweep.json", "sweep_config.json", "sweep_named.json"]
    # Nor a new one in its runs/, or deeper, which its report leaves out, however reached; a
    # run failed there before it started is the sweep's command's to retry.
    runs = os.path.join(sweep, "runs")
    os.symlink(runs, str(tmp_path / "link"))
    os.makedirs(os.path.join(runs, "failed"))
    with open(os.path.join(runs, "failed", "failed.json"), "w") as f:
        f.write('{"error": "killed"}')
    no_run = r"lies in the runs/ of the sweep .*sweep' and holds no run started there"
    for new in ("mine", str(tmp_path / "link" / "mine"), "failed"):
        with pytest.raises(UserError, match=no_run):
            ae_jax.train_and_evaluate(_config(), os.path.join(runs, new))
    with pytest.raises(UserError, match=no_run):
        ae_jax.train_group([_config()], [os.path.join(runs, "mine")])
    only = r"the runs/ of the sweep .*sweep'.*; the sweep's report lists only the runs directly"
    with pytest.raises(UserError, match=r"lies in a folder in " + only):
        ae_jax.train_and_evaluate(_config(), os.path.join(runs, "mine", "deeper"))
    c = _config()
    c.train.num_models = 2  # (its runs would be mine/seed=S: refused before the data is read)
    with pytest.raises(UserError, match=r"lies in .* and would hold runs of its own"):
        ae_jax.train_and_evaluate(c, os.path.join(runs, "mine"))
    assert sorted(os.listdir(runs)) == ["failed", "train.seed=0"]
    # A project's own sweep.json beside its runs/ is no sweep launch's: its runs train there.
    project = tmp_path / "project"
    (project / "runs").mkdir(parents=True)
    (project / "sweep.json").write_text('{"method": "grid", "parameters": {}}')
    done = ae_jax.train_and_evaluate(_config(), str(project / "runs" / "seed_sparse"))
    assert done[0]["status"] == "done"
    c = _config()
    c.train.seed = 0
    done = ae_jax.train_and_evaluate(c, os.path.join(sweep, "runs", "train.seed=0"))
    assert done[0]["status"] == "done"
    for name in os.listdir(runs):  # nor into runs/ itself, emptied
        shutil.rmtree(os.path.join(runs, name))
    with pytest.raises(UserError, match=r"is " + only):
        ae_jax.train_and_evaluate(_config(), runs)
    assert os.listdir(runs) == []


def test_encode_and_decode_run_in_batches_of_eval_batch_size_with_one_program(tmp_path):
    """encode, decode, reconstruct and sample ran the whole input in one call: a few million
    rows needed all their activations at once (an API probe: 1.5 GB per 100k rows of a conv
    VAE). They run in train.eval_batch_size rows, the last batch padded: one program."""
    c = _config(vae=True)
    c.train.eval_batch_size = 8
    ae_jax.train_and_evaluate(c, str(tmp_path / "run"))
    model = ae_jax.load(str(tmp_path / "run"))
    rows = data_lib.load_dataset(c.data).val[:21]
    x = model.preprocessor.inverse_scale(rows)  # raw rows: the table's own units
    codes = model.encode(x)
    np.testing.assert_array_equal(model.encode(x[:13]), codes[:13])  # 8 + 5 padded to 8
    assert model._encode._cache_size() == 1  # one program, (8, D), for 21 rows and 13
    assert model.decode(codes).shape == (21, rows.shape[1])
    assert model.decode(codes[:10]).shape == (10, rows.shape[1])
    assert model._decode._cache_size() == 1
    one_by_one = np.concatenate([model.encode(x[i : i + 1]) for i in range(21)])
    np.testing.assert_allclose(codes, one_by_one, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.reconstruct(x), model.decode(codes), rtol=1e-6)
    assert model.sample(20).shape == (20, rows.shape[1])
    # Fewer rows than a batch: padded to a power of two, so 1..8 rows compile 4 programs (1,
    # 2, 4, 8), not one per count (a notebook probe: 30 counts, 30 compilations).
    for n in range(1, 9):
        np.testing.assert_allclose(model.encode(x[:n]), codes[:n], rtol=1e-5, atol=1e-6)
    assert model._encode._cache_size() == 4


def test_a_sweep_over_list_values_saves_checkpoints_it_can_resume_from(tmp_path):
    """JSON and YAML sweeps write tuples as lists: a run named 'model.encoder_widths=[8]' had
    its checkpoints saved in part (orbax globs a checkpoint's directory, and '[8]' is a
    pattern), so raising train.epochs found no readable checkpoint and set them aside in
    damaged_checkpoints/. Lists are named as the tuples they are."""
    sweep = str(tmp_path / "sweep")
    entries = [{"model.encoder_widths": [8]}]
    sweeps.run_sweep(_config(), entries, sweep)
    assert os.listdir(os.path.join(sweep, "runs")) == ["model.encoder_widths=(8,)"]
    longer = _config()
    longer.train.epochs = 2
    sweeps.run_sweep(longer, entries, sweep)
    run = os.path.join(sweep, "runs", "model.encoder_widths=(8,)")
    summary = json.load(open(os.path.join(run, "summary.json")))
    assert (summary["epoch"], summary["resumed_from_epoch"]) == (2, 1)
    assert not os.path.exists(os.path.join(run, "damaged_checkpoints"))


def test_a_sweep_over_values_with_glob_wildcards_resumes_from_its_checkpoints(tmp_path):
    """'?' (a default missing-value marker) and '*' in a run's name: such runs train and
    resume (orbax, which wrote checkpoints until December 2026, read a checkpoint's directory
    as a glob pattern)."""
    sweep = str(tmp_path / "sweep")
    entries = [{"data.na_values": ["?", "*"]}]
    sweeps.run_sweep(_config(), entries, sweep)
    longer = _config()
    longer.train.epochs = 2
    sweeps.run_sweep(longer, entries, sweep)
    (name,) = os.listdir(os.path.join(sweep, "runs"))
    assert "?" in name and "*" in name
    summary = json.load(open(os.path.join(sweep, "runs", name, "summary.json")))
    assert (summary["epoch"], summary["resumed_from_epoch"]) == (2, 1)


def test_a_workdir_with_brackets_trains_resumes_and_loads(tmp_path):
    """'[' and ']' were refused in a workdir while orbax wrote the checkpoints (it read a
    checkpoint's directory as a glob pattern, where [1] is a set of characters). Today's
    checkpoints are plain files: such a run trains, resumes and loads."""
    run = str(tmp_path / "run[1]")
    ae_jax.train_and_evaluate(_config(), run)
    longer = _config()
    longer.train.epochs = 2
    (summary,) = ae_jax.train_and_evaluate(longer, run)
    assert (summary["epoch"], summary["resumed_from_epoch"]) == (2, 1)
    assert ae_jax.load(run).epoch == 2
    assert not os.path.exists(os.path.join(run, "damaged_checkpoints"))


def test_a_foreign_folder_of_many_files_is_listed_cut_short_with_a_count(tmp_path):
    """Its first 8 names were listed as if they were all it held (a probe)."""
    for i in range(12):
        (tmp_path / f"f{i:02d}.txt").write_text("")
    with pytest.raises(UserError, match=r"'f07.txt', \.\.\. \(4 more\)\]\); expected the work"):
        ae_jax.load(str(tmp_path))


def test_a_run_that_lost_its_preprocessor_is_refused_as_a_reader_is_told(vae_run, tmp_path):
    """load, evaluate and export of a run whose preprocessor.json is gone were told to "move
    the run's directory aside to train it again", a launch's way out (a probe): a reader is
    told that the run cannot be loaded without it, and to restore it."""
    run = tmp_path / "run"
    shutil.copytree(vae_run, run)
    os.remove(run / "preprocessor.json")
    said = (
        "whose preprocessor.json is gone (deleted or moved?): without it, the run's model "
        "(config.json) and how it encodes rows (preprocessor.json) are not known, so it cannot "
        "be loaded. Restore it from a copy; nothing was changed."
    )
    for read in (
        lambda: ae_jax.load(str(run)),
        lambda: evaluate.evaluate_workdir(str(run)),
        lambda: export.export_run(str(run), str(tmp_path / "out")),
    ):
        with pytest.raises(UserError) as info:
            read()
        assert said in str(info.value) and "train it again" not in str(info.value)
    assert not (tmp_path / "out").exists()


def test_an_evaluation_records_the_seed_of_its_posterior_draws(vae_run, tmp_path):
    """`ae-jax evaluate --seed=3` wrote an eval.json that named no seed (only its folder did):
    the number quoted from it could not be traced to its draws. The run's own says 0."""
    run = shutil.copytree(vae_run, tmp_path / "vae")
    own, _ = evaluate.evaluate_run(str(run), figures=False)
    m, out = evaluate.evaluate_run(str(run), seed=3, figures=False)
    assert own["vae/eval_seed"] == 0 and m["vae/eval_seed"] == 3
    assert json.load(open(run / "eval.json"))["vae/eval_seed"] == 0
    assert json.load(open(os.path.join(out, "eval.json")))["vae/eval_seed"] == 3


def test_a_users_own_config_or_preprocessor_json_is_no_started_run(tmp_path, vae_run):
    """A folder holding the user's own preprocessor.json (and nothing else) passed as a started
    run's: the run replaced it with its own; the user's own config.json was compared with the
    launch's as a run's config, 'these fields differ', of defaults (an API probe). Refused as a
    folder of other files, the file unchanged (and so is one holding checkpoints/model.pt: the
    run's checkpoints were written beside it); a run's own config.json, from a run killed
    before it wrote its preprocessor.json, still trains."""
    for name, text in (
        ("preprocessor.json", '{"scaler": "mine"}'),
        ("config.json", '{"lr": 1}'),
        ("checkpoints/model.pt", "weights"),  # (the run's were written beside it)
    ):
        mine = tmp_path / name.split(".")[0]
        (mine / name).parent.mkdir(parents=True)
        (mine / name).write_text(text)
        top = name.split("/")[0]
        with pytest.raises(UserError, match=rf"is a folder of other files \(\['{top}'\]\)"):
            ae_jax.train_and_evaluate(_config(), str(mine))
        assert sorted(p.name for p in mine.rglob("*")) == sorted({top, os.path.basename(name)})
        assert (mine / name).read_text() == text
    started = tmp_path / "started"
    started.mkdir()
    shutil.copy(os.path.join(vae_run, "config.json"), started)
    (summary,) = ae_jax.train_and_evaluate(_config(vae=True), str(started))
    assert summary["status"] == "done"


def test_evaluate_refuses_a_dataset_or_data_path_it_cannot_take(vae_run):
    """evaluate_workdir(dataset=...) evaluated another data set's rows as the run's own, into its
    eval.json (recon/mse 1.154 for 0.0985: a data set of standard scaling for a run of minmax,
    an API probe); a data_path of None or 3 was a TypeError or AttributeError from inside."""
    before = {n: os.path.getmtime(os.path.join(vae_run, n)) for n in os.listdir(vae_run)}
    other = _config(vae=True)
    other.data.scaling = "standard"
    with pytest.raises(UserError, match=r"data.scaling 'standard' there, 'minmax' here"):
        evaluate.evaluate_workdir(vae_run, dataset=data_lib.load_dataset(other.data))
    with pytest.raises(UserError, match=r"dataset: got dict \{\}; expected the Dataset"):
        evaluate.evaluate_workdir(vae_run, dataset={})
    for bad in (None, 3):
        with pytest.raises(UserError, match=rf"data_path={bad!r}, npz_key=''; expected a file's"):
            evaluate.evaluate_workdir(vae_run, data_path=bad)
    with pytest.raises(UserError, match=r"npz_key=1; expected a file's path .* an .npz array's"):
        evaluate.evaluate_workdir(vae_run, data_path="x.npz", npz_key=1)
    after = {n: os.path.getmtime(os.path.join(vae_run, n)) for n in os.listdir(vae_run)}
    assert after == before  # nothing written


def test_sample_refuses_more_draws_than_memory_holds(vae_run):
    """sample(10**9) drew every code at once and aborted the process (a failed buffer check, exit
    134: a notebook's kernel gone; an API probe)."""
    m = ae_jax.load(vae_run)
    said = r"sample: n=1,000,000,000,000 draws need about [\d.e+]+ GiB \(their codes and decod"
    with pytest.raises(UserError, match=said):
        m.sample(10**12)
    assert m.sample(3, seed=1).shape == (3, m.num_features)


def test_numpy_integers_are_the_ints_they_hold_for_chunk_size_and_iw_samples(tmp_path, vae_run):
    """train_together(chunk_size=np.int64(1)) and evaluate_workdir(iw_samples=np.int64(3)) were
    refused as 'expected a whole number' (an API probe), where run_sweep's max_models took one."""
    c = _config()
    runs = [{"train.seed": s} for s in range(2)]
    out = ae_jax.train_together(c, runs, tmp_path / "k", chunk_size=np.int64(1))
    assert [s["status"] for s in out] == ["done", "done"]
    metrics = evaluate.evaluate_workdir(vae_run, iw_samples=np.int64(3), figures=False)
    assert type(metrics["vae/iwae_k"]) is int and metrics["vae/iwae_k"] == 3


def test_complex_codes_are_refused_by_decode_as_complex_rows_by_encode(vae_run):
    """decode took complex codes, dropping their imaginary parts with a ComplexWarning only (an
    API probe), where encode refuses complex rows."""
    m = ae_jax.load(vae_run)
    z = np.zeros((2, m.config.model.latent_dim))
    with pytest.raises(UserError, match=r"expected codes as real numbers; got complex values"):
        m.decode(z + 1j)
    assert m.decode(z).shape == (2, m.num_features)


def test_new_rows_far_outside_the_training_range_are_warned_of(vae_run, caplog, tmp_path):
    """A probe encoded an age of 1e6 (15,650 scaled, a code of ~2,000 where others are ~1) and
    evaluated it with no word, where the validation split's such values are warned of: the
    same warning, for columns beyond 10 widths of the training range (minmax scaling)."""
    m = ae_jax.load(vae_run)
    lo, width = m.preprocessor.offset, m.preprocessor.scale  # (minmax: the training range)
    rows = np.stack([lo, lo + width, lo + 0.5 * width])
    caplog.set_level("WARNING")
    m.encode(rows)
    rows[1, 2] = lo[2] + 12 * width[2]  # 11 widths above its top
    rows[2, 5] = lo[5] - 9 * width[5]  # 9 below its bottom: not far
    assert "far outside" not in caplog.text
    m.encode(rows)
    name = m.preprocessor.input_columns[2]
    said = "the input: 1 numeric column(s) whose values lie far outside the training "
    assert said in caplog.text and f"{name!r}: here " in caplog.text
    assert m.preprocessor.input_columns[5] not in caplog.text
    # `ae-jax evaluate --data` reads its rows another way (with their imputed cells): the same.
    caplog.clear()
    run, rows_csv = tmp_path / "run", tmp_path / "far.csv"
    shutil.copytree(vae_run, run)
    header = ",".join(f'"{c}"' for c in m.preprocessor.input_columns)
    np.savetxt(rows_csv, rows, delimiter=",", header=header, comments="")
    evaluate.evaluate_workdir(str(run), data_path=str(rows_csv), iw_samples=2)
    assert f"--data {str(rows_csv)!r}: 1 numeric column(s) whose values lie far" in caplog.text


def test_evaluate_data_with_date_labels_colours_by_them(vae_run, tmp_path):
    """`evaluate --data` of an .npz whose labels are dates (datetime64) evaluated, then failed
    with a ValueError traceback digesting the rows ("cannot include dtype 'M' in a buffer"),
    writing nothing, where training on the file worked (a probe). Dates digest by their count
    of their unit, so another unit or another day is another digest."""
    run = tmp_path / "run"
    shutil.copytree(vae_run, run)
    m = ae_jax.load(str(run))
    lo, width = m.preprocessor.offset, m.preprocessor.scale
    x = lo + np.random.default_rng(0).uniform(size=(8, len(lo))) * width
    days = np.array(["2020-01-01"] * 4 + ["2021-05-01"] * 4, dtype="datetime64[D]")
    np.savez(tmp_path / "dated.npz", x=x, y=days)
    metrics = evaluate.evaluate_workdir(str(run), data_path=str(tmp_path / "dated.npz"))
    assert metrics["n_val"] == 8 and len(metrics["data_digest"]) == 32
    digests = {
        data_lib.digest(x, days),
        data_lib.digest(x, days.astype("datetime64[s]")),
        data_lib.digest(x, days + np.timedelta64(1, "D")),
    }
    assert len(digests) == 3


def test_a_checkpoint_of_another_run_is_refused_or_said(tmp_path, caplog):
    """A run's checkpoints/ replaced by another run's of the same architecture were loaded
    silently, and evaluated as the run's (a probe: seed 1's numbers written as seed 0's). Now a
    checkpoint of another train.seed is refused, and one whose eval/loss is not the one the
    run logged at its epoch (other settings, same seed) is said."""
    runs = tmp_path / "s"
    sweeps.run_sweep(
        _config(),
        [{"train.seed": 0}, {"train.seed": 1}, {"train.seed": 0, "loss.l1_weight": 0.5}],
        str(runs),
    )
    names = sorted(os.listdir(runs / "runs"))
    own, other_seed, other_l1 = (
        runs / "runs" / n
        for n in ("train.seed=0", "train.seed=1", next(n for n in names if "l1_weight" in n))
    )
    caplog.set_level(logging.WARNING)
    ae_jax.load(str(own))  # its own: neither refused nor said
    assert "checkpoint's eval/loss" not in caplog.text
    run = tmp_path / "copy"
    shutil.copytree(own, run)
    shutil.rmtree(run / "checkpoints")
    shutil.copytree(other_seed / "checkpoints", run / "checkpoints")
    with pytest.raises(UserError, match=r"written by a run of train.seed=1, not this run's train"):
        ae_jax.load(str(run))
    shutil.rmtree(run / "checkpoints")
    shutil.copytree(other_l1 / "checkpoints", run / "checkpoints")
    ae_jax.load(str(run))
    assert "checkpoint's eval/loss" in caplog.text and "copied from another run" in caplog.text
    # A checkpoint whose meta.json is gone (its state whole) loads as before, unchecked.
    shutil.rmtree(run / "checkpoints")
    shutil.copytree(own / "checkpoints", run / "checkpoints")
    for meta in (run / "checkpoints").glob("*/meta.json"):
        meta.unlink()
    assert ae_jax.load(str(run)).epoch == 1
    with pytest.raises(UserError, match=r"which='best' needs a checkpoint with a finite"):
        ae_jax.load(str(run), "best")  # (a FileNotFoundError reading meta.json: a review)


def test_a_sweep_run_that_failed_before_training_is_said_so_when_loaded(tmp_path):
    """A sweep's run that failed on its data holds .lock and failed.json only: loading it
    (evaluate, encode, export) said 'no config.json, so it is not an ae_jax run directory'."""
    run = tmp_path / "runs" / "train.seed=0"
    run.mkdir(parents=True)
    (run / ".lock").write_text("")
    error = "data.path 'bad.csv': column 'income' cannot be encoded"
    (run / "failed.json").write_text(json.dumps({"beside_summary": None, "error": error}))
    with pytest.raises(UserError, match=r"is a run that failed before it trained, so it has no"):
        ae_jax.load(str(run))
    with pytest.raises(UserError, match=r"failed.json: \"data.path 'bad.csv': column 'income'"):
        export.export_run(str(run), str(tmp_path / "out"))
