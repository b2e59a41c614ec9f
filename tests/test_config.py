"""The config schema's names: a field or section `default_config()` lacks is refused by
`validate` (so by every entry point), with the nearest real name; saved configs still load."""

import importlib
import json
import os
import pkgutil
import re
import subprocess
import sys

import ml_collections
import pytest

from ae_jax import config as config_lib
from ae_jax import configs, experiment, models, reruns, sweeps
from ae_jax import data as data_lib
from ae_jax.config import files as config_files
from ae_jax.config.unused import unused_fields, unused_settings
from ae_jax.configs import seed_sparse
from ae_jax.errors import UserError, closest
from ae_jax.evaluation import restore
from tests.conftest import write_purchase_csv

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WHY = (
    " (the fields are default_config()'s, listed by --helpconfig; a misspelt field is an "
    "error, not a silently new setting)."
)


def _launch(*args: str) -> subprocess.CompletedProcess:
    """`python -m experiments.main ARGS` from the repository, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "experiments.main", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _field_error(name: str, suggestion: str | None) -> str:
    hint = f"; did you mean {suggestion!r}?" if suggestion else ""
    return f"{name}: the config has no field {name!r}{hint}{WHY}"


@pytest.mark.parametrize(
    "section,key,suggestion",
    [
        ("train", "epoch", "train.epochs"),
        ("model", "latent_dims", "model.latent_dim"),
        ("loss", "betta", "loss.beta"),
        ("train", "latent_dim", "model.latent_dim"),  # a real field, in another section
        ("optim", "weightdecay", "optim.weight_decay"),  # a placeholder (None) field
        ("loss", "l1", "loss.l1_weight"),  # cut short: not difflib's loss.rho (the probe)
        ("model", "obs_std", "loss.obs_std"),  # itself in another section, not obs_std_learned
        ("train", "iw_samples", "eval.iw_samples"),  # ... not loss.iw_samples_train
        ("model", "zzzqqq", None),  # nothing close: no guess
    ],
)
def test_unknown_field_is_refused_with_the_nearest_real_one(section, key, suggestion):
    c = seed_sparse.get_config()
    config_lib.validate(c)
    c[section][key] = 2
    with pytest.raises(UserError) as info:
        config_lib.validate(c)
    assert str(info.value) == _field_error(f"{section}.{key}", suggestion)


def test_the_nearest_name_is_first_one_differing_in_case_alone():
    """A name in another case is what was meant, where difflib finds nothing ('Y' for 'y') or
    another name first ('Rate' -> 'Rates', a prefix, over 'rate')."""
    assert closest("Y", ["x", "y"]) == "y"
    assert closest("Rate", ["rate", "Rates"]) == "rate"
    assert closest("revenue", ["Revenue", "region"]) == "Revenue"
    assert closest("rate", ["rate", "rates"]) == "rate"  # itself, where it is one of them
    assert closest("qq", ["a", "b"]) == ""


def test_unknown_section_is_refused_with_the_nearest_real_one():
    c = config_lib.default_config()
    c.optimizer = dict(name="sgd")
    with pytest.raises(UserError) as info:
        config_lib.validate(c)
    assert str(info.value) == (
        "config: no section 'optimizer'; did you mean 'optim'? (the sections are "
        "['data', 'eval', 'loss', 'model', 'optim', 'train']; a misspelt field is an error, "
        "not a silently new setting)."
    )


def test_a_section_set_to_none_is_refused_by_name():
    c = config_lib.default_config()
    c.train = None  # ml_collections lets None through to any field, sections included
    with pytest.raises(UserError) as info:
        config_lib.validate(c)
    assert str(info.value) == (
        "train: got None; expected a section of fields (a ConfigDict or dict), like "
        "default_config().train."
    )


@pytest.mark.parametrize(
    "field, value, said",
    [
        ("data.split_seed", 2**64, "got 18446744073709551616"),
        ("data.limit", 2**70, "got 1180591620717411303424"),
        ("data.max_categories", -(2**63) - 1, "got -9223372036854775809"),
        ("train.epochs", 10**1000, "got a whole number of 3322 bits"),
    ],
)
def test_a_whole_number_past_64_bits_is_refused_before_any_work(field, value, said):
    """A probe's data.split_seed of 2**64 (data.limit, data.max_categories of 2**70 alike)
    trained and evaluated, then failed writing TensorBoard's hyperparameters with a numpy
    TypeError traceback, and so did every rerun; 2**63 - 1 trains."""
    c = config_lib.default_config()
    section, key = field.split(".")
    c[section][key] = value
    with pytest.raises(UserError) as info:
        config_lib.validate(c)
    assert str(info.value).startswith(
        f"{field}: {said}; expected a whole number that fits in 64 bits (-2**63 .. 2**63 - 1)"
    )
    c[section][key] = 2**63 - 1 if key != "max_categories" else 5
    config_lib.validate(c)


def test_the_largest_split_seed_trains_and_evaluates_a_dynamically_binarised_vae(tmp_path):
    """data.split_seed = 2**63 - 1 passes validation; a dynamically binarised run's PCA rows
    drew with key split_seed + 1, which overflowed int64 after training: no summary.json,
    every rerun alike (a review)."""
    from ae_jax import experiment
    from ae_jax.configs import seed_vae

    c = seed_vae.get_config()
    c.data.name, c.data.binarize, c.loss.recon, c.data.split_seed = (
        "digits",
        "dynamic",
        "bce",
        2**63 - 1,
    )
    c.train.epochs, c.train.batch_size, c.train.figures, c.train.tensorboard = 1, 256, False, False
    experiment.train_and_evaluate(c, str(tmp_path / "run"))
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["status"] == "done"
    assert (tmp_path / "run" / "eval.json").exists()


def test_the_functions_taking_one_section_refuse_other_things_and_misspelt_fields():
    """load_dataset loaded the bundled digits for a string, None or a misspelt field, and
    build_model passed over a misspelt field (an API probe)."""
    for given, said in [
        ("breast_cancer", "data: got 'breast_cancer'; expected a section of fields"),
        (None, "data: got None; expected a section of fields"),
        ({"nmae": "x"}, "data.nmae: the config has no field 'data.nmae'; did you mean 'data.name'"),
    ]:
        with pytest.raises(UserError, match=re.escape(said)):
            data_lib.load_dataset(given)
    m = config_lib.default_config().model
    m.latnet_dim = 3
    with pytest.raises(UserError, match=r"model.latnet_dim: .*did you mean 'model.latent_dim'"):
        models.build_model(m, 5)
    assert data_lib.load_dataset({}).name == "breast_cancer"  # default_config()'s default


def test_train_and_evaluate_refuses_a_misspelt_field_before_any_work(tmp_path):
    c = config_lib.default_config()
    c.train.epoch = 2
    workdir = os.path.join(tmp_path, "run")
    with pytest.raises(UserError, match=r"^train\.epoch: .*'train\.epochs'"):
        experiment.train_and_evaluate(c, workdir)
    assert not os.path.exists(workdir)


def test_a_config_file_with_misspelt_fields_stops_the_launcher(tmp_path):
    path = os.path.join(tmp_path, "myconf.py")
    with open(path, "w") as f:
        f.write(
            "from ae_jax.config import default_config\n\n\n"
            "def get_config():\n"
            "    c = default_config()\n"
            "    c.train.epoch = 2\n"
            "    c.model.latent_dims = 3\n"
            "    return c\n"
        )
    workdir = os.path.join(tmp_path, "runs", "x")
    r = subprocess.run(
        [sys.executable, "-m", "experiments.main", f"--config={path}", f"--workdir={workdir}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "AE_JAX_COMPILATION_CACHE": "off"},
    )
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error: ")]
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-3000:]
    # Sections are checked in the schema's (sorted) order: model before train.
    assert errors == ["error: " + _field_error("model.latent_dims", "model.latent_dim")]
    assert not os.path.exists(workdir)


def test_saved_config_with_extra_keys_still_loads_and_matches(tmp_path):
    """config.json carries facts beside the fields ("dataset", "extended") and may hold a
    field an older version wrote; reading it back keeps only the schema's fields."""
    c = config_lib.default_config()
    c.train.epochs = 3
    saved = json.loads(json.dumps(c.to_dict()))
    saved["train"]["epoch"] = 7  # misspelt by an older version, or a field since removed
    saved["dataset"] = {"num_features": 30}
    saved["extended"] = [{"from_epochs": 2, "to_epochs": 3}]
    with open(os.path.join(tmp_path, "config.json"), "w") as f:
        json.dump(saved, f)
    loaded, dataset = restore.load_config(str(tmp_path))
    config_lib.validate(loaded)
    assert loaded.train.epochs == 3 and "epoch" not in loaded.train
    assert dataset == {"num_features": 30}
    assert reruns.config_changes(str(tmp_path), c) == ([], False)
    with pytest.raises(UserError, match=r"'dataset'; did you mean 'data'\? \(a run's config.json"):
        config_lib.validate(ml_collections.ConfigDict(saved))  # what load_config is for


def test_a_sweep_with_a_misspelt_base_field_is_refused_before_any_run(tmp_path):
    """Once for the sweep, not as one failed.json per run."""
    base = seed_sparse.get_config()
    base.train.epoch = 2
    with pytest.raises(UserError, match=r"^train.epoch: the config has no field 'train.epoch'"):
        sweeps.run_sweep(base, [{"train.seed": 0}, {"train.seed": 1}], str(tmp_path / "s"))
    assert not os.path.exists(tmp_path / "s")


def test_none_on_the_command_line_is_a_text_fields_value_and_unsets_an_optional_one(tmp_path):
    """`--config.train.parallel=none` (and scaling, binarisation) is the documented 'none';
    `--config.model.decoder_widths=none` unsets an optional field back to None."""
    r = _launch(
        "--config",  # absl's spaced form, read as --config=seed_simple
        "seed_simple",
        f"--workdir={tmp_path / 'run'}",
        "--config.data.name=digits",
        "--config.train.epochs=1",
        "--config.train.parallel=none",
        "--config.data.scaling=none",
        "--config.model.decoder_widths=none",
        "--config.train.figures=False",
        "--config.eval.at_end=False",
    )
    assert r.returncode == 0, r.stderr[-2000:]
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["train"]["parallel"] == "none" and saved["data"]["scaling"] == "none"
    assert saved["model"]["decoder_widths"] is None


def test_a_warm_up_that_is_ignored_or_cut_is_said_so(caplog):
    """optim.warmup_epochs under another schedule was ignored, and one as long as the run or
    longer cut to it, both silently; each is now warned of (not refused: runs and sweeps over
    the schedule from one base config train as before). The ignored one is said at launch
    (`config.unused`: once; it was said twice, by each schedule built)."""
    from ae_jax.training import optim

    c = seed_sparse.get_config()
    c.optim.warmup_epochs = 2.0
    assert unused_settings(c) == [
        "optim.warmup_epochs=2.0 has no effect: it is read by optim.schedule='warmup_cosine' "
        "alone; optim.schedule='constant' does not warm up"
    ]
    caplog.set_level("WARNING")
    c.optim.schedule = "warmup_cosine"
    schedule = optim.make_schedule(c.optim, 10, 5)  # 20 of 50 steps
    assert not caplog.text and float(schedule(20)) == 1.0
    c.optim.warmup_epochs = 5.0
    schedule = optim.make_schedule(c.optim, 10, 5)
    said = "not shorter than the run (5 epochs): the warm-up is cut to 49 steps of the run's 50"
    assert said in caplog.text
    assert float(schedule(49)) == 1.0  # the peak at the last step: no decay after it


@pytest.mark.parametrize(
    "overrides,field,unused",
    [
        ({"model.name": "vae"}, "model.code_activation", True),
        ({"model.name": "autoencoder"}, "model.code_activation", False),
        ({"loss.recon": "mse"}, "loss.obs_std", True),
        ({"loss.recon": "bce"}, "loss.obs_std", True),
        ({"loss.recon": "cbernoulli"}, "loss.obs_std", True),
        ({"loss.recon": "gaussian"}, "loss.obs_std", False),
        ({"loss.recon": "mixed"}, "loss.obs_std", False),
        ({"loss.sparsity": "none"}, "loss.rho", True),
        ({"loss.sparsity": "kl"}, "loss.rho", False),
        ({"optim.schedule": "constant"}, "optim.end_factor", True),
        ({"optim.schedule": "exponential"}, "optim.end_factor", True),
        ({"optim.schedule": "cosine"}, "optim.end_factor", False),
        ({"optim.schedule": "warmup_cosine"}, "optim.end_factor", False),
        ({"optim.schedule": "linear"}, "optim.end_factor", False),
        ({"optim.schedule": "linear"}, "optim.decay_rate", True),
        ({"optim.schedule": "exponential"}, "optim.decay_rate", False),
        ({"optim.schedule": "cosine"}, "optim.warmup_epochs", True),
        ({"optim.schedule": "warmup_cosine"}, "optim.warmup_epochs", False),
        ({"model.arch": "mlp"}, "model.conv_features", True),
        ({"model.arch": "mlp"}, "model.conv_kernel", True),
        ({"model.arch": "conv"}, "model.conv_kernel", False),
        ({"data.path": "x.npy"}, "data.name", True),
        ({"data.path": ""}, "data.name", False),
        ({"data.path": "x.npy"}, "data.dir", True),
        ({"data.path": ""}, "data.dir", False),
        ({"data.name": "mnist"}, "data.val_fraction", True),
        ({"data.name": "tfds:mnist"}, "data.val_fraction", True),
        ({"data.name": "mnist", "data.path": "x.npy"}, "data.val_fraction", False),
        ({"data.name": "digits"}, "data.val_fraction", False),
        ({"loss.kl_warmup_epochs": 0.0}, "loss.kl_warmup_start", True),
        ({"loss.kl_warmup_epochs": 2.0}, "loss.kl_warmup_start", False),
        ({"loss.beta": 0.0}, "loss.free_bits", True),
        (
            {"loss.beta": 0.0, "loss.kl_warmup_epochs": 2.0, "loss.kl_warmup_start": 0.5},
            "loss.free_bits",
            False,
        ),
        ({"loss.beta": 4.0}, "loss.free_bits", False),
        ({"loss.mmd_weight": 0.0}, "loss.mmd_kernel", True),
        ({"loss.mmd_weight": 100.0}, "loss.mmd_kernel", False),
    ],
)
def test_which_fields_the_rest_of_a_config_leaves_unused(overrides, field, unused):
    """Each rule against the code that reads the field (`objective.reconstruction` reads
    obs_std for 'gaussian' and 'mixed' only, `optim.make_schedule` each schedule's own)."""
    flat = config_lib.flatten_config(config_lib.default_config().to_dict())
    assert (field in unused_fields({**flat, **overrides})) is unused


def test_no_shipped_config_or_sweep_entry_sets_a_field_it_leaves_unused():
    """The seed VAE's config kept seed_simple's sigmoid code activation, which no VAE applies
    (its config.json and the trackers' hyperparameters said so: a review)."""
    from ae_jax.configs import ablations, seed_vae

    assert seed_vae.get_config().model.code_activation == "identity"
    said = []
    for package in (configs, ablations):
        for info in pkgutil.iter_modules(package.__path__):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            if not hasattr(module, "get_config"):
                continue
            base = module.get_config()
            entries = module.get_sweep() if hasattr(module, "get_sweep") else []
            for entry in [{}, *entries]:
                config = sweeps.apply_overrides(base, entry)
                said += [f"{info.name} {entry}: {text}" for text in unused_settings(config)]
    assert said == []


def test_an_unused_setting_is_said_once_at_launch_and_may_change_on_a_rerun(tmp_path, caplog):
    """loss.obs_std=0.1 under MSE gave the numbers of the run without it, without a word (a
    probe); now one warning per launch. A rerun may change a field that the run and the launch
    both leave unused (a seed VAE run saved with the sigmoid code activation, reran with the
    seed VAE's config now), not one that either uses."""
    c = seed_sparse.get_config()
    c.data.name, c.train.epochs, c.train.batch_size = "digits", 1, 500
    c.eval.at_end, c.train.figures, c.train.tensorboard = False, False, False
    c.loss.obs_std = 0.1
    w = str(tmp_path / "run")
    caplog.set_level("WARNING")
    experiment.train_and_evaluate(c, w)
    said = "loss.obs_std=0.1 has no effect: only loss.recon='gaussian' or 'mixed' has an "
    assert caplog.text.count(said + "observation std; loss.recon='mse' has none") == 1
    c.loss.obs_std = 1.0  # unused by either: the run is reused, not refused
    assert reruns.config_changes(w, c) == ([], False)
    c.loss.recon = "gaussian"  # now read: a change
    assert reruns.config_changes(w, c)[0] == [
        "loss.obs_std: 0.1 -> 1.0",
        "loss.recon: 'mse' -> 'gaussian'",
    ]
    c.loss.recon, c.model.code_activation = "mse", "identity"  # an AE's own: a change
    assert reruns.config_changes(w, c)[0] == ["model.code_activation: 'sigmoid' -> 'identity'"]
    # A sweep of several groups, and a group that resumes in parts, say it once too: a
    # sweep of 36 groups said it 18 times (a probe).
    c.model.code_activation, c.loss.obs_std = "sigmoid", 0.1
    caplog.clear()
    groups = [{"model.latent_dim": d, "train.seed": s} for d in (2, 3, 4) for s in (0, 1)]
    sweeps.run_sweep(c, groups, str(tmp_path / "sweep"), max_models=1)
    assert caplog.text.count(said + "observation std; loss.recon='mse' has none") == 1


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Region,Browser", ("Region", "Browser")),  # was the one name 'Region,Browser'
        ("(Region, Browser)", ("Region", "Browser")),
        ("[a,b,]", ("a", "b")),  # a trailing comma adds nothing
        ("Region", ("Region",)),
        ("-999", ("-999",)),  # was the number -999, refused as no text
        ("-999,1", ("-999", "1")),  # was (-999, 1)
        ("'',NA", ("", "NA")),  # a quoted part is its inside, the empty cell too
        ("('a,b',)", ("a,b",)),  # a Python literal stays what it says: one name with a comma
        ("'x'", ("x",)),
        ("", ()),
        ("a, 'b,c'", ("a", "b,c")),  # a quoted part keeps its comma (it was split: a review)
        ('"x, y",z', ("x, y", "z")),
        ("Driver's license, Region", ("Driver's license", "Region")),  # a lone quote: text
    ],
)
def test_a_command_line_list_of_names_is_split_at_its_commas(text, expected):
    assert config_lib.parse_text_list(text) == expected


def test_the_launcher_reads_lists_of_names_typed_with_commas_and_joins_repeated_ones():
    r = _launch(
        "--config=seed_sparse",
        "--workdir=unused",
        "--config.data.categorical_columns=Region,Browser",
        "--config.data.categorical_columns",  # absl's spaced form, and a repeat: joined
        "TrafficType",
        "--config.data.na_values=-999,NA",
        "--config.model.encoder_widths=16,8",  # a tuple of numbers: ml_collections' own
        "--helpconfig",
    )
    assert r.returncode == 0, r.stderr[-2000:]
    lines = set(r.stdout.splitlines())
    assert "data.categorical_columns = ('Region', 'Browser', 'TrafficType')" in lines
    assert "data.na_values = ('-999', 'NA')" in lines
    assert "model.encoder_widths = (16, 8)" in lines


def test_a_get_config_of_star_args_loads_without_an_argument(tmp_path):
    """`def get_config(*args)` (or **kwargs) was refused as needing an argument (a review)."""
    for params in ("*args", "**kwargs", "arg=None"):
        path = tmp_path / "c.py"
        path.write_text(
            f"import ae_jax\ndef get_config({params}):\n    return ae_jax.default_config()\n"
        )
        assert config_files.load_config_file(str(path), str(path)).train.epochs > 0
    path.write_text("import ae_jax\ndef get_config(size):\n    return ae_jax.default_config()\n")
    with pytest.raises(UserError, match=r"get_config\(size\) needs an argument"):
        config_files.load_config_file(str(path), str(path))


def test_an_image_sets_name_and_folder_beside_a_data_path_are_said_unused(tmp_path, caplog):
    """conv_ae_mnist given a data.path of MNIST's training images trained on a split of that
    file, not on the image set's test split, and said nothing of data.name='mnist' (a probe):
    the path is read, the name and folder not at all (here: a folder that does not exist)."""
    c = seed_sparse.get_config()
    c.data.name, c.data.dir = "mnist", str(tmp_path / "no such folder")
    c.data.path = write_purchase_csv(tmp_path / "shop.csv")
    c.train.epochs, c.eval.at_end, c.train.figures, c.train.tensorboard = 1, False, False, False
    caplog.set_level("WARNING")
    (s,) = experiment.train_and_evaluate(c, str(tmp_path / "run"))
    assert s["status"] == "done"
    assert "data.name='mnist' has no effect: it names a bundled or image set, read only " in (
        caplog.text
    )
    assert "data.dir='" in caplog.text and "' has no effect: it holds an image set's" in caplog.text


def test_configs_the_launchers_cannot_use_are_one_paragraph_and_a_sweep_keeps_the_cache_off(
    tmp_path,
):
    """A get_config() of only some sections met an AttributeError ('compilation_cache') in
    `train` and a KeyError ('data') in `sweep`, and a FrozenConfigDict absl's AttributeError
    (it cannot be locked), each a traceback, exit 1; and `sweep` ignored
    --config.train.compilation_cache=False, filling the cache (a probe). Now one paragraph,
    exit 2, and the sweep's cache off as the train's."""
    bare, frozen, base = (tmp_path / f"{n}.py" for n in ("bare", "frozen", "base"))
    head = "import ml_collections\nfrom ae_jax.config import default_config\n\n\n"
    bare.write_text(
        head + "def get_config():\n    c = ml_collections.ConfigDict()\n"
        "    c.train = ml_collections.ConfigDict({'epochs': 1})\n    return c\n\n\n"
        "def get_sweep():\n    return [{'train.seed': 0}, {'train.seed': 1}]\n"
    )
    frozen.write_text(
        head + "def get_config():\n    return ml_collections.FrozenConfigDict(default_config())\n"
    )
    base.write_text(
        head + "def get_config():\n    return default_config()\n\n\n"
        "def get_sweep():\n    return [{'train.epochz': 1}]\n"
    )
    hidden = ("JAX_COMPILATION_CACHE_DIR", "AE_JAX_COMPILATION_CACHE")
    env = {k: v for k, v in os.environ.items() if k not in hidden}
    missing = "error: config: missing section 'data'; start from default_config()."
    for i, (command, config, said) in enumerate(
        (
            ("train", bare, missing),
            ("sweep", bare, missing),
            (
                "train",
                frozen,
                "get_config() returned a FrozenConfigDict, which the launcher cannot",
            ),
            ("sweep", base, "train.epochz"),
            ("sweep", base, "train.epochz"),  # without the flag: the cache on, as before
        )
    ):
        env["XDG_CACHE_HOME"] = str(tmp_path / f"xdg{i}")
        r = subprocess.run(
            [sys.executable, "-m", "ae_jax", command, f"--config={config}"]
            + [f"--workdir={tmp_path / 'w'}"]
            + ["--config.train.compilation_cache=False"] * (i == 3),
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=env,
            timeout=300,
        )
        assert r.returncode == 2 and said in r.stderr, (command, config, r.stderr[-2000:])
        assert "Traceback" not in r.stderr
        if config == base:  # the sweep's cache off with the flag (on whatever it, before)
            on = "compilation cache:" in r.stderr and (tmp_path / f"xdg{i}" / "ae_jax").exists()
            assert on == (i == 4), r.stderr[-2000:]


def test_train_on_a_sweeps_file_names_the_sweep_command_with_its_argument(tmp_path):
    """`ae-jax train --config=FILE:ARG` of a sweep's file suggested `ae-jax sweep
    --config=FILE`, without the ':ARG' that chose the data (a probe: that command swept the
    file's default data set)."""
    path = tmp_path / "s.py"
    path.write_text(
        "from ae_jax.config import default_config\n\n\n"
        "def get_config(arg=None):\n    return default_config()\n\n\n"
        "def get_sweep(arg=None):\n    return [{'train.seed': 0}]\n"
    )
    (tmp_path / "taken").write_text("a file where the workdir would be: refused, nothing run")
    r = subprocess.run(
        [sys.executable, "-m", "ae_jax", "train", f"--config={path}:mine.csv"]
        + [f"--workdir={tmp_path / 'taken'}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert r.returncode == 2, r.stderr[-2000:]
    assert f"`ae-jax sweep --config={path}:mine.csv --workdir=DIR` trains" in r.stderr


def test_a_misspelt_section_is_named_before_the_section_it_misses():
    """`trian` in place of `train`: said as missing 'train', without the hint the misspelling
    would get (a review); the misspelt name comes first."""
    c = config_lib.default_config().to_dict()
    c["trian"] = c.pop("train")
    with pytest.raises(UserError, match=r"^config: no section 'trian'; did you mean 'train'\?"):
        config_lib.validate(ml_collections.ConfigDict(c))
    del c["trian"]
    with pytest.raises(UserError, match=r"^config: missing section 'train'; start from default_"):
        config_lib.validate(ml_collections.ConfigDict(c))
