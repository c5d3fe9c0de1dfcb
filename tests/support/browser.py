"""Debian's chromium driven by Playwright, for browser tests.

Playwright's own browser download is never used (`playwright install` must not run here): we point it at
/usr/bin/chromium. Typical use in a test module:

    @pytest.fixture(scope="module")
    def browser():
        with chromium() as b:
            yield b

and `screenshot(page, "name")` to keep a picture under $ARTIFACTS_DIR (default test-artifacts/).
"""
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--headless=new", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync",
]


def chromium_available() -> bool:
    return Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is not None


def launch_chromium(playwright, extra_args=(), **kwargs):
    """A Browser on Debian's chromium from an already started Playwright (`sync_playwright().start()`)."""
    if not chromium_available():
        pytest.skip(f"{CHROMIUM} is not installed (make test installs Debian's chromium)")
    # headless=False: the headless mode comes from --headless=new in the arguments, so Playwright does not add
    # its own (old-style) --headless switch on top.
    # A browser in the tool's default zone, as a US user's would be: pages report the browser's zone once when
    # neither the LMS nor the tenant names one (js/time_zone.js), and tests compare dates in that default zone.
    kwargs.setdefault("env", {**os.environ, "TZ": "America/New_York"})
    return playwright.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *extra_args], headless=False,
                                      **kwargs)


# Cross-site iframes in the renderer of their parent page. With site isolation each navigation between sites
# moves the frame to another process, and now and then Playwright lost sight of the frame after such a move
# (seen about once in 15 runs on a loaded 2-CPU machine): the page showed the tool, the locator never did.
# Cookies (SameSite) and postMessage behave the same either way.
SAME_PROCESS_FRAMES = ("--disable-site-isolation-trials", "--disable-features=IsolateOrigins,site-per-process")


@contextmanager
def chromium(**kwargs):
    """Start Playwright and chromium; yields the Browser and closes both afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright, **kwargs)
        try:
            yield browser
        finally:
            browser.close()


def artifacts_dir() -> Path:
    path = Path(os.environ.get("ARTIFACTS_DIR", "test-artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def screenshot(page, name: str) -> Path:
    """Save a full-page PNG under the artifacts directory; returns its path."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")
    path = artifacts_dir() / f"{safe}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@contextmanager
def screenshot_on_failure(page, name: str):
    """Keep a picture of the page (and say where it is) when the block fails."""
    try:
        yield
    except BaseException as exc:
        try:
            path = screenshot(page, name + "-FAILED")
            frames = ", ".join(f"{f.name or 'main'}={f.url}" for f in page.frames)
            exc.add_note(f"screenshot: {path}; frames: {frames}")
        except Exception:  # noqa: BLE001 - the original failure matters more
            pass
        raise
