"""The same three plugins registered by decorator calls, for `--plugin` without installing:

PYTHONPATH=examples/cdbench-example-plugin/src python -m bench list --plugin cdbench_example_plugin.register
"""

from __future__ import annotations

from bench.api import register_method, register_model, register_task
from cdbench_example_plugin.method import delta_norm
from cdbench_example_plugin.model import tiny_model
from cdbench_example_plugin.task import TASK

register_method(
    "example-delta-norm",
    description="L2 norm of the edge source's output difference, clean vs ablated (one forward each)",
    citation="CDBench example plugin",
)(delta_norm)
register_model("example-tiny")(tiny_model)
register_task(TASK)
