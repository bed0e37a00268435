"""The HTML lab report rendered from a realistic run folder (tests/report_demo.py)."""

from __future__ import annotations

import enum
import json
import re
import struct
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pytest
from report_demo import make_demo_run

from harness.report.catalog import SNAPSHOT, CatalogSource, load_catalog, write_catalog
from harness.report.results import read_results
from harness.report.writer import rebuild


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("href", "src") and value is not None:
                self.refs.append(value)


def _refs(page: Path) -> _Links:
    parser = _Links()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def _section(html: str, title: str) -> str:
    start = html.index(f"<h2>{title}</h2>")
    end = html.find("<h2>", start + 1)
    return html[start : end if end > 0 else len(html)]


@pytest.fixture
def demo_run(tmp_path: Path) -> Path:
    """The demo run, finished, with results.json, junit.xml and the HTML written."""
    run = make_demo_run(tmp_path)
    rebuild(run)
    return run


def test_index_summary_matrix_and_versions(demo_run: Path) -> None:
    """index.html tells a lab engineer what happened.

    1. The summary row of each target counts passed, failed, error, diverged, skipped.
    2. The matrix has a row per catalog id (and per id only tests name), a column per target.
    3. A covered cell links to a test page; uncovered cells say "not covered" or "n/a".
    4. A pass where the catalog expects a divergence (or the reverse) is marked ⚠.
    5. Host facts and versions (QEMU, StratoVirt, libvirt, kernel, hvlab sha) are shown.
    6. Text from the run is escaped: the failing message's <script> is not markup.
    """
    html = (demo_run / "index.html").read_text(encoding="utf-8")
    summary = _section(html, "Summary per target")
    rows = {
        m[0]: re.findall(r">(\d+)<", m[1])
        for m in re.findall(r"<tr><td>([a-z0-9_-]+)</td>(.*?)</tr>", summary)
    }
    assert rows["qemu-x86_64"] == ["3", "0", "1", "1", "0", "5"]
    assert rows["qemu-aarch64"] == ["2", "1", "0", "0", "0", "3"]
    assert rows["stratovirt-x86_64"] == ["0", "0", "0", "0", "2", "2"]

    matrix = _section(html, "Behaviour catalog")
    ids = re.findall(r"<tr><th[^>]*>([A-Z0-9-]+)", matrix)
    assert ids == ["LC-STOP", "MIG-CONVERGE", "MIG-CANCEL-STATUS", "SNAP-RESTORE", "SNAP-UNLISTED"]
    assert re.findall(r"<th>([a-z0-9_-]+)</th>", matrix) == [
        "id",
        "qemu-x86_64",
        "qemu-aarch64",
        "stratovirt-x86_64",
    ]

    cells = re.findall(r'<td class="cell"[^>]*>(.*?)</td>', matrix)
    assert len(cells) == 5 * 3
    assert all('href="tests/' in c for c in cells if "not covered" not in c and "n/a" not in c)
    assert sum("not covered" in c for c in cells) == 4
    assert sum(">n/a<" in c for c in cells) == 1

    cancel_row = matrix[matrix.index(">MIG-CANCEL-STATUS") :].split("</tr>")[0]
    assert "diverges ⚠" in cancel_row  # x86_64: the catalog says QEMU holds
    assert "+1" in cancel_row  # and the passing test of the same cell is linked too

    hosts, versions = _section(html, "Hosts"), _section(html, "Versions")
    assert "6.1.0-28-amd64" in hosts and "guest printed nothing" in hosts
    for text in ("QEMU (x86_64)", "7.2.22", "StratoVirt", "absent", "libvirt", "9.0.0"):
        assert text in versions
    assert "0123456789abcdef0123456789abcdef01234567" in versions

    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &#34;quotes&#34;" in html


def test_test_page_shows_doc_qmp_console_and_plot(demo_run: Path) -> None:
    """A migration test's page has what a lab engineer needs to judge it.

    1. The docstring and catalog claim are there, escaped.
    2. The migrating VM comes first, with its plot: a real PNG of sensible size.
    3. The QMP transcript lists sent commands, replies and events; the torn line is shown.
    4. The console log has no terminal escape sequences left.
    5. Every href/src on the page points at a file of the run folder that exists.
    """
    page = next((demo_run / "tests").glob("*test_auto_converge_qemu-x86_64*.html"))
    html = page.read_text(encoding="utf-8")
    assert "the first thing" in html and "&lt;script&gt;" in html and "<script>" not in html
    assert "auto-converge throttles vCPUs" in html

    assert html.index("VM src") < html.index("VM dst")
    img = re.search(r'<img class="plot" src="([^"]+)"', html)
    assert img is not None
    png = (page.parent / unquote(img.group(1))).resolve()
    head = png.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", head[16:24])
    assert width >= 600 and height >= 300

    assert html.count("&rarr; sent") == 6 and html.count("&larr; event") == 2
    assert "? torn" in html and "1 line(s) were not JSON" in html

    console = html[html.index("<h4>Console") :]
    console = console[: console.index("</pre>")]
    assert "hvlab-guest ready" in console and "\x1b" not in console and "\x07" not in console

    refs = _refs(page).refs
    assert refs, "the page links nothing"
    for ref in refs:
        target = (page.parent / unquote(ref.split("#")[0])).resolve()
        assert target.exists(), f"{ref} does not resolve"


def test_failure_context_on_the_error_page(demo_run: Path) -> None:
    """The page of a test that failed with a HarnessError shows the error's context.

    1. A "Failure context" section names the error type, the command line (shell-quoted),
       the exit code, the hypervisor's stderr and the QMP command sent, in that order.
    2. Every value is escaped: the context's <script> is text, not markup.
    3. The pages of tests that passed have no such section.
    """
    page = next((demo_run / "tests").glob("*test_restore_qemu-x86_64*.html"))
    html = page.read_text(encoding="utf-8")
    context = html[html.index("<h2>Failure context</h2>") :].split("</dl>")[0]
    labels = re.findall(r"<dt>([^<]+)</dt>", context)
    assert labels == [
        "Error",
        "Command line",
        "Exit code",
        "Hypervisor stderr (last lines)",
        "QMP sent",
    ]
    assert "<code>LaunchError</code>" in context and "<code>1</code>" in context
    assert "qemu-system-x86_64 -machine q35 -name &#39;vm 0&#39; -incoming" in context
    assert "can&#39;t open snapshot" in context
    assert "{&#34;execute&#34;: &#34;cont&#34;}" in context
    assert "<script>" not in html and "&lt;script&gt;alert(" in context

    passed = next((demo_run / "tests").glob("*test_stop_qemu-x86_64*.html"))
    assert "Failure context" not in passed.read_text(encoding="utf-8")


def test_partial_run_renders(tmp_path: Path) -> None:
    """A run killed mid-test still renders.

    1. The torn last line of results.jsonl (cut inside a UTF-8 character) is skipped.
    2. index.html says the run is partial and lists the test that had started.
    3. The finished tests all have pages.
    """
    run = make_demo_run(tmp_path, finished=False)
    results = read_results(run)
    assert len(results) == 10
    index = rebuild(run)[1].read_text(encoding="utf-8")
    assert "Partial run." in index
    assert "1 test(s) had started" in index and "test_hotplug.py_test_plug" in index
    assert len(list((run / "tests").glob("*.html"))) == 10


class _Verdict(enum.Enum):
    HOLDS = "holds"
    DIVERGES = "diverges"


@dataclass(frozen=True)
class _Claim:
    id: str
    source: str
    section: str
    claim: str
    expectations: dict[str, _Verdict] = field(default_factory=dict)
    evidence: str = ""


def test_catalog_source_is_snapshotted(tmp_path: Path) -> None:
    """A catalog handed over by the suites is kept with the run as catalog.json.

    1. A CATALOG of dataclass claims with Enum expectations is read.
    2. The longest matching target prefix decides the expectation.
    3. A resolver (the suites' expectation()) decides it for the run's targets.
    4. catalog.json holds the claims; the report reads them back from it alone, and a
       run without catalog.json has an empty catalog.
    """
    claims = {
        "X-1": _Claim(
            "X-1",
            "doc",
            "s1",
            "it works",
            {"qemu": _Verdict.HOLDS, "qemu-aarch64": _Verdict.DIVERGES},
        ),
    }
    catalog = CatalogSource(claims).entries()
    assert catalog["X-1"].claim == "it works"
    assert catalog["X-1"].expectation("qemu-x86_64") == "holds"
    assert catalog["X-1"].expectation("qemu-aarch64") == "diverges"
    assert catalog["X-1"].expectation("stratovirt-x86_64") == ""

    resolved = CatalogSource(claims, lambda cid, t: _Verdict.DIVERGES).entries(["sim:x"])
    assert resolved["X-1"].expectation("sim:x") == "diverges"

    run = tmp_path / "run"
    run.mkdir()
    assert load_catalog(run) == {}
    write_catalog(run, catalog)
    snapshot = json.loads((run / SNAPSHOT).read_text())
    assert snapshot["X-1"]["expectations"] == {"qemu": "holds", "qemu-aarch64": "diverges"}
    assert load_catalog(run) == catalog


def test_suites_catalog_resolves_every_target(tmp_path: Path) -> None:
    """The repository's own suites/catalog.py, as the suites hand it to the report.

    1. Every claim loads with its text and document.
    2. Each target, hypervisors and the libvirt axis alike, gets a verdict (holds,
       diverges or n/a) resolved by the catalog itself.
    3. A diverging claim carries its upstream evidence as the note for that target.
    4. The FLAG-* claims hold on both libvirt targets and are n/a on hypervisors; the
       hypervisor claims are n/a on the libvirt targets.
    """
    from suites.catalog import CATALOG, expectation

    targets = ["qemu-x86_64", "qemu-aarch64", "stratovirt-x86_64", "libvirt-model", "libvirt-9.0"]
    catalog = CatalogSource(CATALOG, expectation).entries(targets)
    assert catalog and all(e.claim and e.source for e in catalog.values())
    for e in catalog.values():
        for t in targets:
            assert e.expectation(t) in ("holds", "diverges", "n/a"), (e.id, t)
    diverging = [
        (e, t) for e in catalog.values() for t in targets if e.expectation(t) == "diverges"
    ]
    assert diverging and all(e.note(t) for e, t in diverging)
    flags = [e for cid, e in catalog.items() if cid.startswith("FLAG-")]
    assert flags
    for e in flags:
        assert [e.expectation(t) for t in targets] == ["n/a"] * 3 + ["holds"] * 2, e.id
    assert catalog["LC-STOP"].expectation("libvirt-model") == "n/a"
