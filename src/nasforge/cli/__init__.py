"""The ``nasforge`` command line: search, supernet, compare, list, show, profile, export,
pareto, proxies, dashboard, report and worker, from a shell.

The CLI is thin: each command (one module each) parses its options, calls the Python API
(:mod:`nasforge.runs` and the core) and prints. An option means the same in every command
(``--workers``, ``--resolution``, ``--cache-dir``, ``--device auto``, ``-p/--param``,
``--budget NUMBER``)::

    nasforge search --strategy regularized-evolution --dataset cifar10 --budget 100 --seed 0
    nasforge search --storage sqlite:///runs.db --budget 200      # persisted, resumable
    nasforge search --evaluator train --data cifar10-jpeg.tar.gz --trials 10 --epochs 6 \
        --channels 8 --cells 1 --resolution 16 --data-fraction 0.2 --storage sqlite:///t.db
    nasforge compare --strategies random,regularized-evolution --seeds 100 --out results/
    nasforge list metrics --dataset cifar100
    nasforge show --storage sqlite:///runs.db                     # the studies stored there
    nasforge profile 6111 --latency                               # params, MACs, latency
    nasforge export STUDY --storage sqlite:///t.db --format onnx --out best.onnx

Errors that nasforge raises on bad input (:class:`~nasforge.errors.NasforgeError`) are printed
as one line, ``error: <what was wrong and how to fix it>``, with exit code 2; an interrupted
search exits with code 130. Result tables go to stdout, progress and notes to stderr, and
``--json`` prints exactly one JSON object on stdout.

Only typer (and nasforge's error classes) are imported when this package loads, so that
``nasforge --help`` starts quickly; rich and the parts of nasforge a command needs are
imported inside the command, and nothing here imports torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from nasforge.cli._app import app
from nasforge.cli._common import parse_params, parse_value

#: The command modules, in the order ``nasforge --help`` lists them; importing one registers
#: its command on :data:`app`.
COMMANDS = (
    "search",
    "supernet",
    "compare",
    "list",
    "proxies",
    "show",
    "profile",
    "export",
    "pareto",
    "dashboard",
    "worker",
)
for _name in COMMANDS:
    importlib.import_module(f"{__name__}.{_name}")

__all__ = ["app", "main", "parse_params", "parse_value"]


def main(args: Sequence[str] | None = None) -> None:
    """Run the ``nasforge`` command (``args`` defaults to ``sys.argv[1:]``); exits the process."""
    app(args=None if args is None else [*args], prog_name="nasforge")
