"""The one error a simulator process ends with on purpose."""

from __future__ import annotations


class Fatal(Exception):
    """The process must exit with status 1 after printing this one line."""
