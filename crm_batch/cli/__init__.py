"""The command line: ``crm-batch`` / ``python run_batch.py``.

Each command builds :class:`~crm_batch.config.Settings` from its common options
(``--config``, ``--db``, ``--as-of``), calls library code and turns a
:class:`~crm_batch.errors.CrmBatchError` into a one-line reason on stderr and the
error's documented exit code. Library modules never print; this module does.
"""

from crm_batch.cli import (  # noqa: F401  (register the commands)
    data_commands,
    delivery_commands,
    run_commands,
    source_commands,
    state_commands,
)
from crm_batch.cli.group import main

__all__ = ["main"]
