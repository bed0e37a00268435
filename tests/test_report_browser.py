"""The report opened in headless Chromium, as a person would: it renders, images load,
links resolve. Needs Debian's ``chromium`` package; without it the test fails."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

import pytest
from report_demo import make_demo_run

from harness.report.writer import rebuild

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]
WIDTH, HEIGHT = 1280, 1600


class _DOM(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str]] = []  # (tag, href or src)
        self.ids: set[str] = set()
        self.attrs: dict[str, str] = {}  # of <body>

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name in ("href", "src"):
                self.refs.append((tag, value))
            elif name == "id":
                self.ids.add(value)
        if tag == "body":
            self.attrs = {k: v or "" for k, v in attrs}


class Chromium:
    def __init__(self, binary: str, profile: Path) -> None:
        self.binary = binary
        self.profile = profile

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [self.binary, *FLAGS, f"--user-data-dir={self.profile}", *args]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=90, check=False)
        assert proc.returncode == 0, f"chromium exited {proc.returncode}: {proc.stderr[-2000:]}"
        return proc

    def dom(self, url: str) -> _DOM:
        """The DOM after load (scripts given 5 s of virtual time), parsed."""
        proc = self._run("--virtual-time-budget=5000", "--dump-dom", url)
        parser = _DOM()
        parser.feed(proc.stdout)
        assert parser.refs or parser.attrs, f"empty DOM for {url}"
        return parser

    def screenshot(self, url: str, png: Path) -> None:
        self._run(f"--window-size={WIDTH},{HEIGHT}", f"--screenshot={png}", url)
        assert png.is_file(), f"no screenshot of {url}"


@pytest.fixture
def chromium(tmp_path: Path) -> Chromium:
    """Headless Chromium with a fresh profile; the test fails if it is not installed."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.fail(
            "chromium is not installed: the report's browser test needs Debian's `chromium` "
            "package (apt-get install chromium)",
            pytrace=False,
        )
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    return Chromium(binary, profile)


@pytest.fixture
def report(tmp_path: Path) -> Path:
    """index.html of the demo run (every outcome, QMP, consoles, migration plots)."""
    return rebuild(make_demo_run(tmp_path / "reports"))[1]


def _check_screenshot(png: Path) -> None:
    from matplotlib import image

    pixels = image.imread(png)
    assert pixels.shape[:2] == (HEIGHT, WIDTH), pixels.shape
    gray = pixels[..., :3].mean(axis=2)
    top = gray[: HEIGHT // 4]
    assert gray.std() > 0.05, "the page looks blank"
    assert (top < 0.5).mean() > 0.005, "no dark text in the top quarter: nothing rendered?"
    assert (top > 0.9).mean() > 0.5, "the top of the page is not mostly light background"


def _local_path(url: str) -> Path:
    parsed = urlparse(url)
    assert parsed.scheme == "file", f"{url} leaves the report folder"
    return Path(unquote(parsed.path))


def _check_refs(page_url: str, dom: _DOM, run_dir: Path) -> list[str]:
    """Every href/src resolves to a file of the run (or an id on the page); images back."""
    images = []
    for tag, ref in dom.refs:
        url = urljoin(page_url, ref)
        path = _local_path(url)
        if path == _local_path(page_url) and urlparse(url).fragment:
            assert urlparse(url).fragment in dom.ids, f"{ref}: no such id on the page"
            continue
        assert path.exists(), f"<{tag}> {ref} on {page_url} does not resolve"
        assert path.resolve().is_relative_to(run_dir.resolve()), f"{ref} is outside the run"
        if tag == "img":
            images.append(url.split("#")[0])
    return images


def _check_images_load(chromium: Chromium, urls: list[str], tmp_path: Path) -> None:
    tags = "\n".join(f'<img src="{u}">' for u in urls)
    check = tmp_path / "check-images.html"
    script = (
        "window.addEventListener('load', () => {"
        " document.body.setAttribute('data-images', JSON.stringify("
        " [...document.images].map(i => [i.src, i.complete, i.naturalWidth]))); });"
    )
    check.write_text(f"<!DOCTYPE html><html><body>{tags}<script>{script}</script></body></html>")
    dom = chromium.dom(check.as_uri())
    loaded = json.loads(dom.attrs.get("data-images", "null"))
    assert loaded is not None, "the image check page did not run"
    assert len(loaded) == len(urls)
    for src, complete, width in loaded:
        assert complete and width > 0, f"{src} did not load (naturalWidth {width})"


def test_report_renders_in_chromium(chromium: Chromium, report: Path, tmp_path: Path) -> None:
    """The index and a migration test page, opened in headless Chromium.

    1. The index renders: a screenshot of the right size, light background, dark text.
    2. Every link and image on the index resolves to a file of the run folder.
    3. Every test page linked from the index exists and its links resolve too (two of
       them, the failed and a migration page, as Chromium's DOM after load).
    4. The migration page renders (screenshot) and its plot images load (naturalWidth > 0).
    """
    run_dir = report.parent
    shots = tmp_path / "shots"
    shots.mkdir()
    index_url = report.as_uri()
    chromium.screenshot(index_url, shots / "index.png")
    _check_screenshot(shots / "index.png")

    index_dom = chromium.dom(index_url)
    _check_refs(index_url, index_dom, run_dir)

    linked = {urljoin(index_url, r).split("#")[0] for _, r in index_dom.refs}
    pages = sorted(u for u in linked if "/tests/" in u)
    assert len(pages) == 10, pages
    images: list[str] = []
    for url in pages:  # Chromium's DOM for the pages a person would open first, else the file
        if re.search(r"test_(auto_converge|cancel_status)_qemu-aarch64", url):
            dom = chromium.dom(url)
        else:
            dom = _DOM()
            dom.feed(_local_path(url).read_text(encoding="utf-8"))
        images += _check_refs(url, dom, run_dir)

    migration = next(u for u in pages if re.search(r"test_auto_converge_qemu-x86_64", u))
    chromium.screenshot(migration, shots / "migration.png")
    _check_screenshot(shots / "migration.png")
    assert len(images) == 2, images
    _check_images_load(chromium, images, tmp_path)
