"""Every bad input the README's table lists: configs and data (bad_inputs), data files
(bad_inputs_data), runs and the command line (bad_inputs_runs)."""

from tests import bad_inputs, bad_inputs_data, bad_inputs_runs

CASES = bad_inputs.CASES + bad_inputs_data.CASES + bad_inputs_runs.CASES
