"""The report's Jinja2 environment: templates in ``templates/``, autoescape on, filters.

Every value a template prints is escaped by Jinja2 unless it is markup a template made
(a macro's output); no Python code builds HTML strings. Links to files of the run go
through the ``href`` filter (percent-encoding; the escaping is Jinja2's).
"""

from __future__ import annotations

import hashlib
import re
from functools import cache
from typing import Any
from urllib.parse import quote

import jinja2

OUTCOME_LABELS = {
    "passed": "passed",
    "failed": "failed",
    "error": "error",
    "diverged": "diverges from docs",
    "skipped": "skipped",
    "not covered": "not covered",
    "n/a": "n/a",
}


def href(path: str) -> str:
    """A relative link to a file of the run, percent-encoded (Jinja2 escapes it)."""
    return quote(path, safe="/#")


def outcome_class(outcome: str) -> str:
    return "o-" + re.sub(r"[^a-z]+", "-", outcome.lower()).strip("-")


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("harness.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["href"] = href
    env.filters["outcome_class"] = outcome_class
    env.globals["labels"] = OUTCOME_LABELS
    return env


def render(template: str, **context: Any) -> str:
    """``templates/<template>`` rendered with ``context``."""
    return environment().get_template(template).render(**context)


def test_slug(nodeid: str) -> str:
    """A file name for a test's page: readable, unique per nodeid, safe on any filesystem."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_.")[-100:] or "test"
    return f"{safe}-{hashlib.sha1(nodeid.encode()).hexdigest()[:8]}"
