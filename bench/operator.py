"""``python bench/operator.py --stacks 200``: operator throughput on the dev cluster (bench/operator_throughput.py).

This file shares its name with the standard library's ``operator``, which Python imports at start-up
(enum, collections): a script run from this directory would import this file instead. So it takes its
directory off the import path, hands over to the benchmark, and, if imported as ``operator`` anyway
(by another script here), puts the real module in its place.
"""

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
if sys.path and os.path.abspath(sys.path[0] or ".") == _HERE:
    del sys.path[0]

if __name__ == "__main__":
    import runpy

    # --sizes: the scale curve (bench/operator_scale.py); --rounds: the bursts repeated (bench/operator_rounds.py);
    # otherwise the throughput run against a raw client.
    script = "operator_throughput.py"
    if any(a.startswith("--sizes") for a in sys.argv[1:]):
        script = "operator_scale.py"
    elif any(a.startswith("--rounds") for a in sys.argv[1:]):
        script = "operator_rounds.py"
    runpy.run_path(os.path.join(_HERE, script), run_name="__main__")
else:
    import importlib

    del sys.modules[__name__]
    sys.modules[__name__] = importlib.import_module(__name__)
