"""Executors: where evaluations run (in this process, in a process pool; Ray comes later)."""

from nasforge.execution.base import Executor
from nasforge.execution.inprocess import InProcessExecutor
from nasforge.execution.pool import ProcessPool

__all__ = ["Executor", "InProcessExecutor", "ProcessPool"]
