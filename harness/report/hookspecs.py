"""Hooks the hvlab plugin adds to pytest (registered in ``pytest_addhooks``)."""

from __future__ import annotations

import pytest

from harness.report.catalog import CatalogSource


@pytest.hookspec(firstresult=True)
def pytest_hvlab_catalog(config: pytest.Config) -> CatalogSource | None:
    """The behaviour catalog of the collected suites, for the report's ``catalog.json``.

    A suites ``conftest.py`` implements it (``@pytest.hookimpl(optionalhook=True)``); the
    first non-None answer wins. Called once the tests are collected, before any runs.
    """
