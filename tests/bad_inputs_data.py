"""Bad inputs about data files (README table rows; see tests/bad_inputs.py)."""

import os

import numpy as np

from tests.bad_inputs import _csv, _run


def _npz(d, **arrays):
    path = os.path.join(d, "data.npz")
    np.savez(path, **arrays)
    return path


_GOOD = "".join(f"{i},{i % 5},{i % 3}\n" for i in range(30))


CASES = [
    ("a label array of the wrong shape",
     lambda d: _run(d, data__path=_npz(d, x=np.ones((10, 3), np.float32),
                                       y=np.zeros((10, 2))))),
    ("data.image_shape that does not match the columns",
     lambda d: _run(d, data__path=_npz(d, x=np.ones((10, 6), np.uint8)),
                    data__image_shape=(2, 2))),
    ("missing values (data.missing='error')",
     lambda d: _csv(d, "a,b,c\n" + _GOOD + "1,NA,2\n3,,4\n")),
    ("a thousands separator in a number",
     lambda d: _csv(d, 'a,b,c\n' + _GOOD + '"1,037",2,3\n')),
    ("a header that is one column holding a delimiter",
     lambda d: _csv(d, "a;b;c\n" + _GOOD, data__delimiter=",")),
    ("a column whose range is not finite",
     lambda d: _csv(d, "a,b,c\n" + _GOOD + "-1e308,1,2\n1e308,2,3\n")),
    ("onehot on a column with too many categories",
     lambda d: _csv(d, "a,b,c\n" + "".join(f"{i},c{i},{i % 2}\n" for i in range(40)),
                    data__categorical="onehot", data__max_categories=10)),
    ("data.missing='drop' leaves no rows",
     lambda d: _csv(d, "a,b,c\n1,NA,2\n3,,4\n", data__missing="drop")),
]
