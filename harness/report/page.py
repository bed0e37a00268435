"""HTML building blocks shared by the report pages: escaping, the page shell, badges.

Every piece of text that comes from a run (test names, messages, logs, host facts) goes
through :func:`esc`; the pages are static files with inline CSS and no scripts.
"""

from __future__ import annotations

import html
import re
from urllib.parse import quote

OUTCOME_LABELS = {
    "passed": "passed",
    "failed": "failed",
    "error": "error",
    "diverged": "diverges from docs",
    "skipped": "skipped",
    "not covered": "not covered",
    "n/a": "n/a",
}

CSS = """
:root { --fg:#1d2330; --muted:#5b6475; --line:#d8dde6; --bg:#ffffff; --alt:#f5f7fa;
  --pass:#1a7f37; --pass-bg:#dafbe1; --fail:#b42318; --fail-bg:#ffe4e1;
  --div:#8a4b00; --div-bg:#fff1c2; --skip:#4b5563; --skip-bg:#eceff3;
  --none:#8b93a1; --none-bg:#ffffff; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--fg); background: var(--bg); margin: 0 auto; max-width: 1200px;
  padding: 1.5rem 2rem 4rem; }
h1 { font-size: 1.6rem; margin: 0 0 .3rem; }
h2 { font-size: 1.2rem; margin: 2rem 0 .6rem; padding-bottom: .2rem;
  border-bottom: 1px solid var(--line); }
h3 { font-size: 1.05rem; margin: 1.4rem 0 .4rem; }
a { color: #0b57d0; text-decoration: none; }
a:hover { text-decoration: underline; }
.muted { color: var(--muted); }
.crumbs { font-size: .9rem; margin-bottom: 1rem; }
table { border-collapse: collapse; margin: .4rem 0 1rem; font-size: .92rem; }
th, td { border: 1px solid var(--line); padding: .3rem .6rem; text-align: left;
  vertical-align: top; }
th { background: var(--alt); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr:nth-child(even) td { background: #fbfcfd; }
.badge { display: inline-block; padding: .05rem .5rem; border-radius: .8rem;
  font-size: .82rem; font-weight: 600; white-space: nowrap; }
.o-passed { color: var(--pass); background: var(--pass-bg); }
.o-failed, .o-error { color: var(--fail); background: var(--fail-bg); }
.o-diverged { color: var(--div); background: var(--div-bg); }
.o-skipped, .o-n-a { color: var(--skip); background: var(--skip-bg); }
.o-not-covered { color: var(--none); background: var(--none-bg); border: 1px dashed var(--line); }
td.cell { text-align: center; }
td.cell a { display: block; }
.banner { padding: .6rem 1rem; border-radius: .4rem; margin: 1rem 0; }
.banner.warn { background: var(--div-bg); color: var(--div); }
.banner.bad { background: var(--fail-bg); color: var(--fail); }
.banner.good { background: var(--pass-bg); color: var(--pass); }
pre { background: var(--alt); border: 1px solid var(--line); border-radius: .3rem;
  padding: .6rem .8rem; overflow-x: auto; font: 12.5px/1.45 ui-monospace, "DejaVu Sans Mono",
  Menlo, monospace; white-space: pre-wrap; word-break: break-word; }
pre.log { max-height: 36rem; overflow-y: auto; }
.doc { white-space: pre-wrap; background: none; border: none; padding: 0;
  font: inherit; }
table.qmp td { font: 12px/1.4 ui-monospace, "DejaVu Sans Mono", monospace; }
table.qmp td pre { margin: 0; padding: 0; border: 0; background: none; }
tr.send td.dir { color: #0b57d0; }
tr.recv td.dir { color: var(--pass); }
tr.event td.dir { color: var(--div); }
tr.qmperr td { background: var(--fail-bg) !important; }
img.plot { max-width: 100%; border: 1px solid var(--line); border-radius: .3rem; }
dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; }
dl.kv dt { font-weight: 600; } dl.kv dd { margin: 0; }
th .muted { font-weight: 400; }
"""


def esc(value: object) -> str:
    """Text -> HTML, quotes included (safe in element bodies and attribute values)."""
    return html.escape(str(value), quote=True)


def href(path: str) -> str:
    """A relative link to a file of the run, percent-encoded and HTML-escaped."""
    return esc(quote(path, safe="/#"))


def outcome_class(outcome: str) -> str:
    return "o-" + re.sub(r"[^a-z]+", "-", outcome.lower()).strip("-")


def badge(outcome: str, text: str | None = None) -> str:
    label = text if text is not None else OUTCOME_LABELS.get(outcome, outcome)
    return f'<span class="badge {outcome_class(outcome)}">{esc(label)}</span>'


def page(title: str, body: str, *, crumbs: str = "") -> str:
    nav = f'<div class="crumbs">{crumbs}</div>' if crumbs else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n"
        f"<body>\n{nav}\n{body}\n</body>\n</html>\n"
    )


def table(headers: list[str], rows: list[list[str]], *, cls: str = "", num_from: int = 99) -> str:
    """A table from already-escaped cells; columns from ``num_from`` on are numeric."""
    cls_attr = f' class="{esc(cls)}"' if cls else ""
    head = "".join(
        f'<th class="num">{h}</th>' if i >= num_from else f"<th>{h}</th>"
        for i, h in enumerate(headers)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{c}</td>' if i >= num_from else f"<td>{c}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>\n"
        for row in rows
    )
    return f"<table{cls_attr}><thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody></table>"


def test_slug(nodeid: str) -> str:
    """A file name for a test's page: readable, unique per nodeid, safe on any filesystem."""
    import hashlib

    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_.")[-100:] or "test"
    return f"{safe}-{hashlib.sha1(nodeid.encode()).hexdigest()[:8]}"
