"""Contract checks that every registered component must pass (used by nasforge's own tests,
and usable by anyone who writes a strategy or a space of their own)."""

from nasforge.testing.contracts import check_space, check_strategy

__all__ = ["check_space", "check_strategy"]
