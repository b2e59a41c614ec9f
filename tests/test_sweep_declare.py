"""Declaring sweeps: what product, zip_ and random_search refuse, run names a file system
can make, and get_sweep()s that return other runs in another process."""

import hashlib
import json
import os
import re

import numpy as np
import pytest

from ae_jax import sweeps as sweep
from ae_jax.commands import sweep as sweep_command
from ae_jax.configs.ablations import seed_study
from ae_jax.errors import UserError
from ae_jax.sweeps import overrides as overrides_lib
from tests.bad_inputs import _cfg

BIG_DEEP = [
    sweep.named("big", {"model.latent_dim": 16}),
    sweep.named("deep", {"model.encoder_widths": (16,)}),
]


def test_two_arguments_of_a_product_that_set_one_field_are_refused():
    """The run named `big` trained latent_dim 4: the later axis overwrote the named variant's
    value, and nothing said so (it was caught only when it made two runs alike)."""
    with pytest.raises(UserError) as e:
        sweep.product(BIG_DEEP, {"model.latent_dim": [4]})
    assert str(e.value) == (
        "sweep.product: its arguments 1 (named big, deep) and 2 ({'model.latent_dim': [4]}) "
        "both set 'model.latent_dim': every run would train the later argument's value, the "
        "earlier one's lost (a named variant's run would keep its name, not its value). Set each "
        "field in one argument only (put its values together in one, or chain products that "
        "each set it once)."
    )
    with pytest.raises(UserError, match=r"arguments 1 \(\{'a': \[1, 2\]\}\) and 3 .* set 'a'"):
        sweep.product({"a": [1, 2]}, {"b": [3]}, [{"a": 5}])
    with pytest.raises(UserError, match=r"arguments 1 \(named big, deep\) and 2 \(named x\) both"):
        sweep.product(BIG_DEEP, [sweep.named("x", {"train.seed": 1})])  # one name would be lost
    with pytest.raises(UserError, match=r"argument 2: entry 0 is int 1; a list axis holds"):
        sweep.product({"a": [1]}, [1, 2])
    # Fields set once each: as before (the shipped seed study's models, data sets, seeds).
    assert sweep.product(BIG_DEEP, {"b": [1]}) == [{**BIG_DEEP[0], "b": 1}, {**BIG_DEEP[1], "b": 1}]
    assert len(seed_study.get_sweep()) == 40


@pytest.mark.parametrize(
    "value, shown",
    [
        ("relu", "str 'relu'"),
        ("/d/a.csv", "str '/d/a.csv'"),
        (1e-3, "float 0.001"),
        (None, "NoneType None"),
    ],
)
def test_one_value_where_a_list_is_expected_is_refused(value, shown):
    """A string was split into its characters ("unknown activation 'r'"), a path into runs
    alike, a number was "'float' object is not iterable"."""
    for declare in (lambda: sweep.product({"f.x": value}), lambda: sweep.zip_(**{"f.x": value})):
        with pytest.raises(UserError) as e:
            declare()
        assert str(e.value).startswith(
            f"sweep axis 'f.x': got the single {shown} where a list of values is expected; "
            f"wrap it in a list, {{'f.x': [{value!r}]}} (one run per value"
        )


def test_an_empty_axis_is_refused():
    """product({"x": []}, ...) was an empty sweep: "get_sweep() returned no runs" (a probe)."""
    for declare in (
        lambda: sweep.product({"loss.beta": []}, {"train.seed": [0, 1]}),
        lambda: sweep.zip_(**{"loss.beta": ()}),
    ):
        with pytest.raises(UserError, match=r"sweep axis 'loss.beta': the list of values is emp"):
            declare()


def test_a_set_is_refused_and_the_documented_axes_still_work():
    with pytest.raises(UserError, match=r"got a set .* give a list, e.g. \['relu', 'tanh'\]"):
        sweep.product({"model.activation": {"tanh", "relu"}})
    assert sweep.product({"model.encoder_widths": [(16, 8), [4]]}, {"train.seed": range(2)}) == [
        {"model.encoder_widths": (16, 8), "train.seed": 0},
        {"model.encoder_widths": (16, 8), "train.seed": 1},
        {"model.encoder_widths": [4], "train.seed": 0},
        {"model.encoder_widths": [4], "train.seed": 1},
    ]
    assert sweep.zip_(a=np.arange(2), b=("x", "y")) == [{"a": 0, "b": "x"}, {"a": 1, "b": "y"}]


def test_random_search_takes_its_space_as_a_dict_as_product_does():
    """Dotted field names could only be given as **{...} after n and seed; the natural call
    with a dict failed with TypeErrors ("got multiple values for argument 'n'": a probe)."""
    space = {"optim.learning_rate": ("log", 1e-4, 1e-2), "model.latent_dim": [2, 4, 8]}
    draws = sweep.random_search(3, 0, **space)
    assert len(draws) == 3 and all(set(d) == set(space) for d in draws)
    assert sweep.random_search(space, n=3, seed=0) == draws
    assert sweep.random_search(space, 3, 0) == draws
    assert sweep.random_search(space, n=3, seed=1) != draws
    for args, kwargs in (((space, 3, 0, 1), {}), ((space, 3), {"n": 3, "seed": 0})):
        with pytest.raises(UserError, match=r"expected random_search\(space, n=N, seed=S\)"):
            sweep.random_search(*args, **kwargs)
    with pytest.raises(UserError, match=r"random_search: seed=None; give a whole number"):
        sweep.random_search(space, n=3)


def test_random_search_draws_log_uniform_and_whole_numbers_to_the_top_of_their_range():
    """Draws spread as documented: ("log", 1e-4, 1e-1) puts 2 of its 3 decades below 1e-2
    (a uniform draw puts 90% above), ("int", 4, 6) reaches 6. Draws in range, as the other
    tests checked, passed a uniform "log" and a top left out (a mutation check)."""
    space = {"optim.learning_rate": ("log", 1e-4, 1e-1), "model.latent_dim": ("int", 4, 6)}
    draws = sweep.random_search(space, n=600, seed=0)
    rates = np.array([d["optim.learning_rate"] for d in draws])
    assert 1e-4 <= rates.min() and rates.max() <= 1e-1
    # 2/3 below 1e-2, each decade a third: binomial sd 0.019 of 600 draws
    assert np.mean(rates < 1e-2) == pytest.approx(2 / 3, abs=0.06)
    assert np.mean(rates < 1e-3) == pytest.approx(1 / 3, abs=0.06)
    dims = [d["model.latent_dim"] for d in draws]
    assert {v: dims.count(v) for v in (4, 5, 6)} == {
        v: pytest.approx(200, abs=40) for v in (4, 5, 6)
    }
    assert set(dims) == {4, 5, 6}


def test_random_search_refuses_ranges_it_cannot_draw_from():
    with pytest.raises(UserError) as e:
        sweep.random_search(2, 0, **{"optim.learning_rate": ("log", 0, 1e-2)})
    assert str(e.value) == (
        "random_search optim.learning_rate: ('log', 0, 0.01); a log-uniform range needs "
        "0 < lo <= hi (the draws are exp(uniform(log lo, log hi))); for a range from 0 use "
        "('uniform', 0, hi)."
    )
    for space, said in (
        ({"a": "relu"}, r"random_search a: got 'relu'; expected a list of choices"),
        ({"a": 0.5}, r"random_search a: got 0.5; expected a list of choices"),
        ({"a": []}, r"random_search a: the list of choices is empty"),
        ({"a": ("int", 1.5, 3)}, r"lo and hi must be finite whole numbers"),
        ({"a": ("uniform", 3, 1)}, r"random_search a: \('uniform', 3, 1\); expected lo <= hi"),
        ({"a": ("gauss", 0, 1)}, r"random_search a: unknown distribution 'gauss'"),
        # (a probe: numpy's TypeError "ufunc 'isfinite' not supported", and its ValueError)
        ({"a": ("int", 0, 2**70)}, r"random_search a: \('int', 0, 1180591620717411303424\); exp"),
        ({"a": ("uniform", 0, float("inf"))}, r"lo and hi must be finite numbers"),
    ):
        with pytest.raises(UserError, match=said):
            sweep.random_search(2, 0, **space)
    # Two equal draws (three choices, four draws) name random_search, not two sweep entries.
    space = {"model.activation": ["relu", "elu", "tanh"]}
    with pytest.raises(UserError) as e:
        sweep.random_search(4, 0, **space)
    assert re.match(r"random_search: draws \d and \d of n=4 \(seed=0\) are the same ", str(e.value))
    assert len(sweep.random_search(2, 0, **space)) == 2  # (two different draws)
    for seed in (None, -1):  # (-1: numpy's "expected non-negative integer", no name)
        with pytest.raises(UserError, match=rf"random_search: seed={seed}; give a whole number"):
            sweep.random_search(2, seed, a=[1])
    # n: 2.5 was a TypeError from range(), -1 an empty sweep ("returned no runs"), a probe's
    for n in (2.5, -1, 0, True):
        with pytest.raises(UserError, match=rf"random_search: n={n!r}; expected how many draws"):
            sweep.random_search(n, 0, a=[1])
    assert len(sweep.random_search(np.int64(3), 0, a=("uniform", 0, 1))) == 3


def test_a_named_variant_given_as_an_axis_is_told_to_go_in_a_list():
    """product(named(...), {...}): it said "sweep axis '_name': got the single str ...; wrap it
    in a list, {'_name': [...]}", a key the user never wrote (a probe)."""
    with pytest.raises(
        UserError,
        match=r"argument 1 is one sweep.named variant \('big'\), an override dict, not an "
        r"axis: put it in a list, \[sweep.named\(...\), ...\]",
    ):
        sweep.product(sweep.named("big", {"model.latent_dim": 16}), {"train.seed": [0, 1]})
    runs = sweep.product([sweep.named("big", {"model.latent_dim": 16})], {"train.seed": [0, 1]})
    assert [(r["_name"], r["model.latent_dim"], r["train.seed"]) for r in runs] == [
        ("big", 16, 0),
        ("big", 16, 1),
    ]


def test_named_refuses_overrides_that_are_not_a_dict():
    """A list of overrides was a bare TypeError ("'list' object is not a mapping")."""
    with pytest.raises(UserError, match=r"sweep.named\('a', ...\): got list \[\{'loss.beta'"):
        sweep.named("a", [{"loss.beta": 1.0}])
    assert sweep.named("a", {"loss.beta": 1.0})["loss.beta"] == 1.0


def test_a_name_too_long_for_the_file_system_is_a_prefix_and_a_hash(tmp_path, monkeypatch):
    """Ten random-search fields named a directory of 330 bytes: `os.makedirs` raised 'File name
    too long' after sweep.json was written, on every rerun. Names within the limit stay as
    they were (existing sweeps rerun unchanged)."""
    limit = os.pathconf(str(tmp_path), "PC_NAME_MAX")
    assert overrides_lib.name_max(str(tmp_path / "not" / "yet")) == limit
    fits = {"data.path": "x" * (limit - len("data.path="))}
    over = {"data.path": "x" * (limit + 1 - len("data.path="))}
    runs = sweep.expand([fits, over, {"loss.l1_weight": 1e-4, "train.seed": 3}], str(tmp_path))
    full = "data.path=" + "x" * (limit + 1 - len("data.path="))
    digest = hashlib.sha256(full.encode()).hexdigest()[:16]
    assert [r.name for r in runs] == [
        "data.path=" + "x" * (limit - len("data.path=")),
        full[: limit - 17] + "~" + digest,
        "loss.l1_weight=0.0001,train.seed=3",
    ]
    assert [len(r.name.encode()) for r in runs[:2]] == [limit, limit]
    # Cut on a character, not inside one (a name is text): 'é' is 2 bytes.
    assert (
        overrides_lib.run_name({"a": "é" * 20}, 30)
        == "a=" + "é" * 5 + "~" + hashlib.sha256(("a=" + "é" * 20).encode()).hexdigest()[:16]
    )
    monkeypatch.setattr(os, "pathconf", lambda *a: (_ for _ in ()).throw(OSError("no")))
    assert overrides_lib.name_max(str(tmp_path)) == 255


def test_a_sweep_of_long_names_trains_and_records_the_full_overrides(tmp_path):
    draws = sweep.random_search(
        2,
        0,
        **{
            "optim.learning_rate": ("log", 1e-4, 1e-2),
            "loss.l1_weight": ("log", 1e-6, 1e-3),
            "loss.noise_std": ("uniform", 0.0, 0.1),
            "optim.b1": ("uniform", 0.8, 0.95),
            "optim.b2": ("uniform", 0.9, 0.999),
            "optim.eps": ("log", 1e-9, 1e-6),
            "optim.grad_clip": ("uniform", 0.5, 2.0),
            "model.latent_dim": ("int", 2, 8),
            "train.seed": ("int", 0, 100),
        },
    )
    assert all(len(overrides_lib.run_name(d)) > 255 for d in draws)
    status = sweep.run_sweep(_cfg(), draws, str(tmp_path / "s"))
    assert status["counts"]["done"] == 2
    assert [e["overrides"] for e in status["runs"]] == draws
    for e in status["runs"]:
        assert e["name"].startswith("optim.learning_rate=") and len(e["name"].encode()) <= 255
        config = json.load(open(tmp_path / "s" / e["workdir"] / "config.json"))
        assert config["optim"]["learning_rate"] == e["overrides"]["optim.learning_rate"]


SEEDED_ONCE = "import random\nrandom.seed(0)\n"


@pytest.mark.parametrize("head", ["import random\n", SEEDED_ONCE])
def test_a_get_sweep_that_draws_other_runs_in_another_process_is_refused(tmp_path, head):
    """Unseeded `random`: each shard trained another list of runs, and nothing said so. A
    module seeded at import draws the same runs in every process: accepted."""
    path = tmp_path / "s.py"
    path.write_text(
        f"{head}\n\ndef get_config():\n    return None\n\n\ndef get_sweep():\n"
        "    return [{'optim.learning_rate': random.uniform(1e-4, 1e-2)} for _ in range(3)]\n"
    )
    if head == SEEDED_ONCE:
        assert len(sweep_command.load_sweep(str(path))[0]) == 3
        return
    with pytest.raises(UserError) as e:
        sweep_command.load_sweep(str(path))
    assert str(e.value).startswith(
        f"--config={path}: get_sweep() returned other runs when the file was loaded and called "
        "again (entry 0 was {'optim.learning_rate': 0."
    )
    assert str(e.value).endswith(
        "Seed whatever random draws it makes: sweep.random_search(n, seed, ...), "
        "random.Random(0), np.random.default_rng(0)."
    )


def test_a_refusal_in_get_sweep_names_the_line_of_the_file(tmp_path):
    path = tmp_path / "s.py"
    path.write_text(
        "from ae_jax import sweeps as sweep\n\n\ndef get_config():\n    return None\n\n\n"
        "def get_sweep():\n    return sweep.product({'model.activation': 'relu'})\n"
    )
    with pytest.raises(UserError) as e:
        sweep_command.load_sweep(str(path))
    assert str(e.value).startswith(
        f"--config={path}: get_sweep(), line 9 (return sweep.product({{'model.activation': "
        "'relu'})): sweep axis 'model.activation': got the single str 'relu' where a list"
    )


def test_chain_concatenates_sweeps_and_refuses_what_is_not_one():
    """chain(product(...), [named(...)], generator) is their entries in order; a dict (one
    entry, or a product's spec), None or a list of non-dicts was a raw ValueError/TypeError."""
    beta = sweep.product({"loss.beta": [1.0, 2.0]})
    seed = sweep.named("seed", {"train.seed": 3})
    got = sweep.chain(beta, [seed], ({"loss.beta": b} for b in [4.0]))
    assert got == [{"loss.beta": 1.0}, {"loss.beta": 2.0}, seed, {"loss.beta": 4.0}]
    for args, said in (
        ((beta, {"loss.beta": [3.0]}), r"argument 2 is dict .*: wrap it in a list, \[entry\]"),
        ((seed,), r"argument 1 is dict \{'_name': 'seed'"),
        ((beta, None), r"argument 2 is NoneType None; expected a sweep, a list of dicts"),
        (([[1.0]],), r"argument 1 is list \[\[1.0\]\]; expected a sweep"),
    ):
        with pytest.raises(UserError, match=said):
            sweep.chain(*args)


def test_entries_that_train_one_config_are_refused_however_they_say_it(tmp_path, monkeypatch):
    """One data file written three ways trained three runs, which the report counted as 3
    seeds of one setting (a standard deviation of 0); so did entries that differ only in a
    field that changes nothing a run learns (eval.at_end, train.checkpoints)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "small.csv").write_text("a,b\n" + "".join(f"{i},{i % 3}\n" for i in range(20)))
    paths = ["small.csv", str(tmp_path / "small.csv"), "./small.csv"]
    with pytest.raises(UserError, match=r"sweep entries 0 \(data.path=small.csv\) and 1 .* train"):
        sweep.run_sweep(_cfg(), [{"data.path": p} for p in paths], str(tmp_path / "w"))
    for field, values in (("eval.at_end", (True, False)), ("train.checkpoints", (True, False))):
        with pytest.raises(UserError, match=r"fields that change nothing a run learns"):
            sweep.run_sweep(_cfg(), [{field: v} for v in values], str(tmp_path / "w"))
    assert not (tmp_path / "w").exists()


def test_a_shard_takes_runs_by_their_sorted_names():
    names = ["b", "d", "a", "c", "e"]
    shards = [sweep.takes(names, (i, 2)) for i in range(2)]
    assert shards == [{"a", "c", "e"}, {"b", "d"}]
    assert [sweep.takes(names[::-1], (i, 2)) for i in range(2)] == shards  # any order alike


def test_overrides_that_cannot_apply_say_what_was_meant():
    """A named variant's NUL ended the sweep in a traceback ('embedded null byte'); a nested
    dict entry was 'did you mean loss.rho?'; a tuple given as an axis, split into its
    elements, got no hint; a field unset by default was 'expected NoneType'."""
    with pytest.raises(UserError, match=r"hold no '/' or control character \(NUL"):
        sweep.run_sweep(_cfg(), [sweep.named("a\0b", {"train.seed": 1})], "w_nul")
    assert not os.path.exists("w_nul")
    with pytest.raises(UserError, match=r"'loss' is a section: name each field with dots, as "):
        sweep.apply_overrides(_cfg(), {"loss": {"l1_weight": 0.0}})
    with pytest.raises(UserError, match=r"write the axis as a list of tuples, \[\(64, 32\)\]"):
        sweep.apply_overrides(_cfg(), {"model.encoder_widths": 64})
    with pytest.raises(UserError, match=r"nesterov=1: expected bool or None like the current"):
        sweep.apply_overrides(_cfg(), {"optim.nesterov": 1})
