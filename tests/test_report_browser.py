"""The HTML report in real headless Chromium: it renders offline, highlights planning tokens, and
its filters work when clicked.

Chromium is driven over the DevTools protocol on a pipe (--remote-debugging-pipe: JSON messages
separated by NUL bytes on file descriptors 3 and 4), so no websocket or webdriver package is needed.
Debian's `chromium` package provides the browser; .ci/run installs it and sets
HICRA_REQUIRE_BROWSER=1, so CI fails rather than skips when it is missing.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time

import pytest

from hicra.report.build import build_report
from tests.report_fixtures import make_run

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--remote-debugging-pipe",
)
TIMEOUT = 30.0


def _browser() -> str:
    found = next((path for name in BROWSERS if (path := shutil.which(name))), None)
    if found is None:
        message = "chromium not installed (apt-get install -y chromium; .ci/run installs it)"
        if os.environ.get("HICRA_REQUIRE_BROWSER"):
            pytest.fail(f"HICRA_REQUIRE_BROWSER is set but {message}")
        pytest.skip(message)
    return found


class DevTools:
    """A minimal DevTools-protocol client over Chromium's pipe, with its events recorded."""

    def __init__(self, binary: str) -> None:
        self.profile = tempfile.mkdtemp(prefix="hicra-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # Chromium reads commands on fd 3 and writes replies on fd 4. The pipe ends are first moved
        # above 4, so that putting them in place cannot clobber one another. Python's own fds are
        # not inheritable (PEP 446), so close_fds=False passes on only the two dup2 copies.
        high_r = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD_CLOEXEC, 5)
        high_w = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD_CLOEXEC, 5)

        def wire() -> None:
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        self.process = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            close_fds=False,
            preexec_fn=wire,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for fd in (to_browser_r, from_browser_w, high_r, high_w):
            os.close(fd)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []
        self.session: str | None = None

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise TimeoutError("no answer from chromium")
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, session: bool = True, **params) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str) -> dict:
        deadline = time.monotonic() + TIMEOUT
        seen = 0
        while True:
            for event in self.events[seen:]:
                if event.get("method") == method:
                    return event
            seen = len(self.events)
            self.events.append(self._read_message(deadline))

    def open(self, url: str) -> None:
        target = self.call("Target.createTarget", session=False, url="about:blank")["targetId"]
        self.session = self.call(
            "Target.attachToTarget", session=False, targetId=target, flatten=True
        )["sessionId"]
        for domain in ("Page", "Runtime", "Network", "Log"):
            self.call(f"{domain}.enable")
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")

    def js(self, expression: str):
        result = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def click(self, selector: str) -> None:
        """A real mouse click (pressed and released) at the centre of the element."""
        box = self.js(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
            " return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            self.call(
                "Input.dispatchMouseEvent",
                type=kind,
                x=box[0],
                y=box[1],
                button="left",
                clickCount=1,
            )

    def choose(self, select_id: str, value: str) -> None:
        """Pick an option of a <select> as a user does: new value, then a 'change' event."""
        self.js(
            f"(() => {{ const s = document.getElementById({json.dumps(select_id)});"
            f" s.value = {json.dumps(value)}; s.dispatchEvent(new Event('change')); }})()"
        )

    def close(self) -> None:
        try:
            self.call("Browser.close", session=False)
            self.process.wait(timeout=10)
        except (RuntimeError, TimeoutError, OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)
        shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    base = tmp_path_factory.mktemp("browser")
    runs = [
        make_run(base / "hicra", change=25, seed=1),
        make_run(base / "grpo", credit="grpo", change=35, seed=2, truncated_tail=True),
    ]
    return build_report(runs, base / "report")


@pytest.fixture(scope="module")
def page(report):
    browser = DevTools(_browser())
    try:
        browser.open(report.files["html"].resolve().as_uri())
        yield browser
    finally:
        browser.close()


def visible_cards(page) -> list[dict]:
    return page.js(
        "Array.from(document.querySelectorAll('article.rollout'))"
        ".filter(a => !a.hidden && a.offsetParent !== null)"
        ".map(a => ({run: a.dataset.run, step: a.dataset.step, outcome: a.dataset.outcome,"
        " phase: a.dataset.phase}))"
    )


def samples(report) -> list[tuple[str, str, str, str]]:
    """(run, step, outcome, phase) of every sampled rollout, as the page should have them."""
    return [
        (str(r.index), str(x.step), x.outcome, r.phase_of(x.step))
        for r in report.reports
        for x in r.rollouts.samples
    ]


def test_page_renders_offline_with_plots_and_tables(page, report):
    assert page.js("document.title").startswith("hicra report: hicra α=0.2, grpo")
    images = page.js(
        "Array.from(document.images).map(i => [i.id, i.complete, i.naturalWidth, i.naturalHeight])"
    )
    assert images == [
        ["plot-dynamics", True, 1100, 800],
        ["plot-hierarchy", True, 1650, 800],  # 2 x 3 panels: Miller-Madow and gram counts
    ]
    rows = page.js(
        "Array.from(document.querySelectorAll('#summary-table tr')).map(r => r.innerText)"
    )
    assert len(rows) == 3 and "step 25" in rows[1] and "step 35" in rows[2]
    assert page.js("document.querySelectorAll('table.gram-table').length") == 4  # 2 runs x 2 phases
    # Nothing but the file itself was fetched: no scripts, fonts or images from anywhere else.
    urls = [
        e["params"]["request"]["url"]
        for e in page.events
        if e.get("method") == "Network.requestWillBeSent"
    ]
    assert urls and all(u.startswith(("file://", "data:")) for u in urls), urls
    errors = [
        e
        for e in page.events
        if e.get("method") == "Runtime.exceptionThrown"
        or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
    ]
    assert errors == []


def test_planning_tokens_are_highlighted(page, report):
    marks = page.js(
        "Array.from(document.querySelectorAll('pre.completion mark.plan'))"
        ".map(m => [m.textContent, m.title, getComputedStyle(m).backgroundColor])"
    )
    expected = sum(len(x.spans) for r in report.reports for x in r.rollouts.samples)
    assert len(marks) == expected > 0
    for text, title, background in marks:
        first_gram = title.split(", ")[0]
        assert first_gram in " ".join(text.lower().split()), (text, title)
        assert background not in ("rgba(0, 0, 0, 0)", "transparent")
    # "But wait," has nested grams ("but", "but wait", "wait"): merged into one highlight.
    assert any(t == "But wait" and "but wait" in title for t, title, _ in marks)


def test_model_output_is_text_never_markup(page):
    assert page.js("window.__pwned === undefined")
    assert page.js("document.scripts.length") == 1
    assert page.js("document.querySelectorAll('pre.completion img, pre.completion b').length") == 0
    shown = page.js(
        "Array.from(document.querySelectorAll('pre.completion')).map(p => p.textContent)"
        ".find(t => t.includes('__pwned'))"
    )
    assert shown.startswith("<script>window.__pwned = 1</script><img src=x")
    assert "\\frac{a}{b} < c" in shown and "</pre></article> that." in shown


def test_filters_show_exactly_the_matching_rollouts(page, report):
    everything = samples(report)
    assert len(everything) == len(visible_cards(page)) > 0
    assert page.js("document.getElementById('rollout-count').textContent") == (
        f"showing {len(everything)} of {len(everything)} sampled rollouts"
    )

    def shown() -> list[tuple[str, str, str, str]]:
        return [(c["run"], c["step"], c["outcome"], c["phase"]) for c in visible_cards(page)]

    page.click("button[data-outcome='correct']")
    assert shown() == [s for s in everything if s[2] == "correct"]
    assert (
        page.js("document.querySelector(\"button[data-outcome='correct']\").ariaPressed") == "true"
    )
    page.click("button[data-outcome='incorrect']")
    assert shown() == [s for s in everything if s[2] == "incorrect"] != []

    page.choose("filter-step", "30")
    assert shown() == [s for s in everything if s[2] == "incorrect" and s[1] == "30"] != []
    page.choose("filter-run", "1")
    assert shown() == [
        s for s in everything if s[2] == "incorrect" and s[1] == "30" and s[0] == "1"
    ]
    assert page.js("document.getElementById('no-rollouts').hidden") is (shown() != [])

    page.click("button[data-outcome='all']")
    page.choose("filter-step", "all")
    page.choose("filter-phase", "2")
    assert shown() == [s for s in everything if s[0] == "1" and s[3] == "2"] != []
    page.choose("filter-phase", "1")
    page.choose("filter-step", "55")  # phase two only: nothing matches
    assert shown() == []
    assert page.js("document.getElementById('no-rollouts').hidden") is False
    assert "showing 0 of" in page.js("document.getElementById('rollout-count').textContent")

    for select_id in ("filter-run", "filter-step", "filter-phase"):
        page.choose(select_id, "all")
    assert len(shown()) == len(everything)
