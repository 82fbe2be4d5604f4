"""Render a web page in a real headless Chromium: its visible text and a PNG screenshot.

The browser is the distribution's (``apt-get install -y chromium``), driven by the ``playwright``
Python package through ``executable_path=``; nothing is downloaded at test time (no
``playwright install``). One browser serves several pages::

    with Browser() as browser:
        text = browser.render(f"{server.uri}/#/experiments/1/runs", tmp / "runs.png",
                              wait_for_text=["parent sweep", "2 matching runs"])

The text returned is ``document.body.innerText`` of the page and of every frame in it: MLflow's
artifact viewer shows an HTML artifact in a sandboxed ``blob:`` iframe whose origin is opaque,
out of reach of the page's own scripts but not of the driver.

Two things of the MLflow UI (3.17) are set aside through its local storage
(:data:`MLFLOW_UI_STORAGE`, seeded before any page script runs): its telemetry SharedWorker,
whose script request the driver never sees finish (so the network would never look idle), and
the MLflow Assistant panel that opens on first load over a quarter of the page. The sidebar is
put in its "Model training" mode instead of the default "GenAI".
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

VIEWPORT = {"width": 1600, "height": 1000}
TAIL = 2000  # characters of the last text seen that a failure reports
QUIET_S = 0.5  # the network counts as idle after this long with no request in flight
LONG_REQUEST_S = 5.0  # a request in flight longer than this (a stream, a worker) is not waited on

# localStorage entries the MLflow UI reads (keys are ``<key>_v<version>``, values JSON).
MLFLOW_UI_STORAGE = {
    "mlflow.settings.telemetry.enabled_v1": "false",
    "mlflow.telemetry.info.alert.dismissed_v1": "true",
    "mlflow.assistant.fab.autoOpenedOnFirstLoad_v1": "true",
    "mlflow.assistant.panelOpen_v1": "false",
    "mlflow.workflowType_v1": '"machine_learning"',
}

_BODY_TEXT = "() => document.body ? document.body.innerText : ''"
_MAIN_THREAD_IDLE = "() => new Promise(done => requestIdleCallback(done, {timeout: 2000}))"


def chromium_path() -> str | None:
    """The system Chromium's executable.

    Returns:
        ``/usr/bin/chromium`` if it exists, else ``chromium`` or ``chromium-browser`` found on
        ``PATH``, else None.
    """
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


class Browser:
    """One headless Chromium, reused for several :meth:`render` calls; a context manager.

    Each render gets a fresh browser context (cookies, local storage), so that nothing one page
    did leaks into the next.

    Args:
        executable: The Chromium to run; :func:`chromium_path` when None.
        viewport: The page's size in CSS pixels, ``{"width": ..., "height": ...}``.
        local_storage: Entries put into every page's ``localStorage`` before its scripts run;
            :data:`MLFLOW_UI_STORAGE` when None, ``{}`` for none.

    Raises:
        RuntimeError: No Chromium is installed, or the ``playwright`` package is missing.
    """

    def __init__(
        self,
        executable: str | None = None,
        viewport: Mapping[str, int] | None = None,
        local_storage: Mapping[str, str] | None = None,
    ) -> None:
        executable = executable or chromium_path()
        if executable is None:
            raise RuntimeError("no Chromium found: apt-get install -y chromium")
        try:
            from playwright.sync_api import sync_playwright
        except ImportError as error:
            raise RuntimeError("no playwright package: pip install playwright") from error
        self.viewport = dict(viewport or VIEWPORT)
        storage = MLFLOW_UI_STORAGE if local_storage is None else dict(local_storage)
        # In every frame, before the page's scripts; an opaque-origin frame has no localStorage.
        self._init_script = (
            f"try {{ for (const [k, v] of Object.entries({json.dumps(storage)})) "
            "localStorage.setItem(k, v); } catch (e) {}"
        )
        # /dev/shm may be small in a container; there is no GPU to use.
        args = ["--disable-dev-shm-usage", "--disable-gpu", "--hide-scrollbars"]
        self._playwright = sync_playwright().start()
        try:
            # Chromium refuses its sandbox to root (CI runs as root): --no-sandbox there only.
            self._browser = self._playwright.chromium.launch(
                executable_path=executable,
                headless=True,
                args=args,
                chromium_sandbox=os.geteuid() != 0,
            )
        except BaseException:
            self._playwright.stop()
            self._playwright = None
            raise
        self.version: str = self._browser.version

    def __enter__(self) -> Browser:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the browser and stop the driver; calling it again does nothing."""
        if self._playwright is None:
            return
        try:
            self._browser.close()
        finally:
            self._playwright.stop()
            self._playwright = None

    def render(
        self,
        url: str,
        screenshot: Path,
        wait_for_text: str | Sequence[str] | None = None,
        timeout_s: float = 60,
    ) -> str:
        """Open ``url``, let it settle, save a full-page PNG and return its visible text.

        It waits for the page's load event, then until no request has been in flight for half
        a second and the page's main thread has gone idle (requests pending longer than
        :data:`LONG_REQUEST_S` are not waited on), then, if ``wait_for_text`` is given, polls
        until it (each of them, for a sequence) appears in the text of the page or of any of
        its frames. The match is case-sensitive and on ``innerText``, which CSS
        ``text-transform`` changes. The whole wait is bounded by ``timeout_s``.

        A quiet network is a heuristic (the MLflow UI may still fetch more after it): pass
        ``wait_for_text`` for whatever a test asserts on.

        Args:
            url: The page, e.g. ``http://127.0.0.1:5000/#/experiments/1/runs``.
            screenshot: Where the PNG goes; its folder is created.
            wait_for_text: A string, or strings, the rendered text must contain.
            timeout_s: Seconds for loading, settling and finding ``wait_for_text`` together.

        Returns:
            ``document.body.innerText`` of the page, followed by that of each non-empty frame
            in it, separated by blank lines.

        Raises:
            AssertionError: The page did not load, did not settle or did not show
                ``wait_for_text`` within ``timeout_s``; the message ends with the last 2000
                characters of text seen, and the screenshot is saved all the same.
        """
        from playwright.sync_api import Error as PlaywrightError

        screenshot = Path(screenshot)
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        wanted = [wait_for_text] if isinstance(wait_for_text, str) else list(wait_for_text or [])
        deadline = time.monotonic() + timeout_s
        context = self._browser.new_context(viewport=self.viewport, device_scale_factor=1)
        try:
            context.add_init_script(self._init_script)
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            network = _Network(page)
            text, failure = "", None
            try:
                page.goto(url, wait_until="load", timeout=_ms_left(deadline))
                if not network.wait_quiet(deadline):
                    failure = f"the network never went quiet: {network.pending()}"
                else:
                    text = _visible_text(page)
                    while missing := [want for want in wanted if want not in text]:
                        if time.monotonic() >= deadline:
                            failure = f"never appeared: {missing}"
                            break
                        page.wait_for_timeout(250)
                        text = _visible_text(page)
            except PlaywrightError as error:  # its TimeoutError included
                failure = str(error).splitlines()[0]
            if failure is not None and not text:
                try:
                    text = _visible_text(page)
                except PlaywrightError:
                    pass
            try:
                page.screenshot(path=str(screenshot), full_page=True, timeout=30_000)
            except PlaywrightError as error:
                lost = f"no screenshot ({str(error).splitlines()[0]})"
                failure = f"{failure}; {lost}" if failure else lost
            if failure is not None:
                detail = f"; page errors: {errors[-3:]}" if errors else ""
                raise AssertionError(
                    f"{url} within {timeout_s:g}s: {failure}{detail}; screenshot {screenshot}; "
                    f"last text seen:\n{text[-TAIL:]}"
                )
            return text
        finally:
            context.close()


def render(
    url: str,
    screenshot: Path,
    wait_for_text: str | Sequence[str] | None = None,
    timeout_s: float = 60,
) -> str:
    """:meth:`Browser.render` in a browser of its own, started and closed for this one page.

    Args:
        url: The page to open.
        screenshot: Where the PNG goes.
        wait_for_text: A string, or strings, the rendered text must contain.
        timeout_s: Seconds for loading, settling and finding ``wait_for_text`` together.

    Returns:
        The visible text of the page and its frames.
    """
    with Browser() as browser:
        return browser.render(url, screenshot, wait_for_text=wait_for_text, timeout_s=timeout_s)


class _Network:
    """The requests a page has in flight, counted from the driver's events.

    Playwright's own ``networkidle`` is not used: it waits forever on a request made for a
    SharedWorker (its end is reported to the worker, not the page), as MLflow's telemetry
    worker would have it do.
    """

    def __init__(self, page: Any) -> None:
        self.page = page
        self.started: dict[Any, float] = {}
        self.last_change = time.monotonic()
        page.on("request", self._start)
        page.on("requestfinished", self._end)
        page.on("requestfailed", self._end)

    def _start(self, request: Any) -> None:
        self.started[request] = self.last_change = time.monotonic()

    def _end(self, request: Any) -> None:
        self.started.pop(request, None)
        self.last_change = time.monotonic()

    def pending(self) -> list[str]:
        """The URLs still in flight."""
        return [request.url for request in self.started]

    def wait_quiet(self, deadline: float) -> bool:
        """Whether the page went quiet before ``deadline`` (a ``time.monotonic()``).

        Quiet: no request in flight for :data:`QUIET_S`, and none started while the page's
        main thread then finished what it was doing (a ``requestIdleCallback`` round trip);
        on a slow machine a page may parse and render for longer than :data:`QUIET_S` between
        one request and the next.
        """
        from playwright.sync_api import Error as PlaywrightError

        while True:
            now = time.monotonic()
            waited_on = [t for t in self.started.values() if now - t < LONG_REQUEST_S]
            if not waited_on and now - self.last_change >= QUIET_S:
                mark = self.last_change
                try:
                    self.page.evaluate(_MAIN_THREAD_IDLE)
                    if self.last_change == mark:
                        return True
                except PlaywrightError:  # the page navigated meanwhile: look again
                    pass
            if time.monotonic() >= deadline:
                return False
            self.page.wait_for_timeout(100)  # the driver delivers events while it waits


def _ms_left(deadline: float) -> float:
    """Milliseconds until ``deadline``, at least 1 (playwright reads 0 as no limit)."""
    return max(1.0, (deadline - time.monotonic()) * 1000)


def _visible_text(page: Any) -> str:
    """The innerText of ``page``'s main frame, then of each other non-empty frame."""
    from playwright.sync_api import Error as PlaywrightError

    parts = []
    for frame in page.frames:
        try:
            text = frame.evaluate(_BODY_TEXT)
        except PlaywrightError:  # detached or navigating while we looked
            continue
        if text and text.strip():
            parts.append(text)
    return "\n\n".join(parts)
