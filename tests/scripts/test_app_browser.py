"""scripts/app.py in a real browser (Debian's chromium driven by Playwright): the page served on a free local port,
the packaged webcam clip uploaded, an emotion chosen, the edit waited for and its video checked (frame count, fps),
the slider moved (a re-render from the cached reconstruction), a broken upload (a one-line error), and nothing, from
the server or the page, sent anywhere but this machine.

A screenshot of the finished page is written to the test's folder, and also to $NED_APP_SCREENSHOT when that is
set (docs/images/app.png is made so: NED_APP_SCREENSHOT=docs/images/app.png make test PYTEST_ARGS=-kbrowser)."""

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from ned_outlier.assets import asset_path
from ned_outlier.io.image import read_image
from ned_outlier.io.video import VideoReader

from factories import free_port

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
START_TIMEOUT_S = 120
EDIT_TIMEOUT_MS = 240_000  # reconstruction and edit of the 72-frame clip: 5 s alone, minutes on a busy machine

# Runs scripts/app.py with an audit hook that records every connection to, and every name lookup of, anything
# but this machine (the server's side of "no request leaves the machine"; the page's is checked in the browser).
AUDITED_APP = """
import ipaddress, runpy, sys
log = open(sys.argv[1], "a", buffering=1)
LOCAL_NAMES = {None, "", "localhost", "127.0.0.1", "::1", "0.0.0.0"}
def local(host):
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False
def audit(event, args):
    if event == "socket.connect" and isinstance(args[1], tuple) and not local(args[1][0]):
        log.write(f"connect {args[1]}\\n")
    elif event == "socket.getaddrinfo" and args[0] not in LOCAL_NAMES and not local(args[0]):
        log.write(f"lookup {args[0]}\\n")
sys.addaudithook(audit)
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def wait_until_serving(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"the app exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"the app did not answer in {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """(url, audit log) of the app running in a subprocess; stopped after the module's tests."""
    folder = tmp_path_factory.mktemp("app")
    port = free_port()
    audit_log, server_log = folder / "outbound.log", folder / "server.log"
    audit_log.touch()
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_TEMP_DIR": str(folder / "gradio"),
                   "NO_PROXY": "127.0.0.1,localhost"}
    with open(server_log, "w") as log:
        server = subprocess.Popen([sys.executable, "-c", AUDITED_APP, str(audit_log), str(REPO / "scripts" / "app.py"),
                                   "--port", str(port), "--work-dir", str(folder / "edits")],
                                  stdout=log, stderr=subprocess.STDOUT, env=environment)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until_serving(url, server, server_log)
        yield url, audit_log
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("no chromium found: `make setup` installs Debian's chromium when run as root "
                    "(else: apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements/dev.txt)")
    with sync_api.sync_playwright() as playwright:
        # Playwright's own browser download is never used: Debian's chromium, with its background calls home off.
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-default-apps", "--disable-domain-reliability"])
        yield chromium
        chromium.close()


# The status line's own text: the block around it also holds Gradio's progress tracker, whose timer ("0.3s") can
# still be showing when the text has already changed.
STATUS_TEXT = "#status [data-testid=markdown]"


def status_of(page) -> str:
    return page.locator(STATUS_TEXT).inner_text()


def wait_for_status(page, *fragments: str, timeout: int = EDIT_TIMEOUT_MS) -> str:
    """The status line once it holds every fragment (or is an error, which fails the test)."""
    page.wait_for_function("([selector, fragments]) => { const s = document.querySelector(selector).innerText;"
                           " return s.includes('error') || fragments.every(f => s.includes(f)); }",
                           arg=[STATUS_TEXT, list(fragments)], timeout=timeout)
    status = status_of(page)
    assert all(fragment in status for fragment in fragments), status
    return status


def download(page, folder: Path, name: str) -> Path:
    """The file the page offers under 'Download the edit', fetched from the app."""
    href = page.locator("#download a").first.get_attribute("href")
    response = page.request.get(href)
    assert response.ok, href
    path = folder / name
    path.write_bytes(response.body())
    return path


def middle_frame(path: Path) -> np.ndarray:
    frames = list(VideoReader(path))
    return frames[len(frames) // 2].astype(np.int16)


def test_edit_in_the_browser(app, browser, tmp_path):
    url, audit_log = app
    clip = asset_path("single_face_video")
    source = VideoReader(clip).info
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(url)

    page.locator("#upload input[type=file]").set_input_files(str(clip))
    assert wait_for_status(page, "1 face found") == "1 face found: face 0 (frames 0-71)"
    assert page.locator("#faces img").count() == 1  # the face's thumbnail
    page.locator("#emotion input").click()
    page.get_by_role("option", name="sad", exact=True).click()
    page.locator("#edit").click()
    status = wait_for_status(page, "wrote single_face_sad.mp4", "intensity 1")
    assert "reconstruction reused" in status  # reconstructed once, on upload
    edited = download(page, tmp_path, "full.mp4")
    info = VideoReader(edited).info
    assert (info.frame_count, info.fps, info.width, info.height) == (
        source.frame_count, source.fps, source.width, source.height)
    side_by_side = page.locator("#side-by-side video")
    page.wait_for_function("document.querySelector('#side-by-side video').readyState >= 2", timeout=30_000)
    assert side_by_side.evaluate("video => video.videoWidth") == 2 * source.width  # original | edited
    side_by_side.evaluate("video => { video.currentTime = video.duration / 2; }")
    page.wait_for_function("document.querySelector('#side-by-side video').seeking === false", timeout=10_000)
    screenshot = page.screenshot(path=str(tmp_path / "app.png"), full_page=True)
    if os.environ.get("NED_APP_SCREENSHOT"):
        Path(os.environ["NED_APP_SCREENSHOT"]).write_bytes(screenshot)

    # The slider re-renders from the cached reconstruction, and half the intensity is another edit.
    slider = page.locator("#intensity input[type=range]")
    slider.fill("0.5")
    slider.dispatch_event("pointerup")  # the end of a drag: gradio's `release`
    status = wait_for_status(page, "wrote single_face_sad.mp4", "intensity 0.5")
    assert "reconstruction reused" in status
    half = download(page, tmp_path, "half.mp4")
    assert VideoReader(half).info.frame_count == source.frame_count
    unchanged = np.abs(middle_frame(half) - middle_frame(clip)).mean()
    assert 0 < np.abs(middle_frame(half) - middle_frame(edited)).mean()
    assert unchanged < np.abs(middle_frame(edited) - middle_frame(clip)).mean()


    local = url.rstrip("/")
    outside = [seen for seen in requests if not seen.startswith((local, "data:", "blob:"))]
    assert not outside, outside
    assert audit_log.read_text() == ""
    page.close()


def test_a_broken_upload_is_a_one_line_error(app, browser, tmp_path):
    url, _ = app
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 100)
    page = browser.new_page()
    page.goto(url)
    page.locator("#upload input[type=file]").set_input_files(str(broken))
    page.wait_for_function("([selector]) => document.querySelector(selector).innerText.includes('error')",
                           arg=[STATUS_TEXT], timeout=60_000)
    status = status_of(page).strip()
    assert status.startswith("error:") and "broken.mp4" in status and "\n" not in status, status
    assert "Traceback" not in status
    page.close()


def test_a_group_photo_shows_every_face_and_edits_the_one_clicked(app, browser, tmp_path):
    url, _ = app
    photo = tmp_path / "group.jpg"
    shutil.copy(asset_path("multi_face_image"), photo)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url)
    page.locator("#upload input[type=file]").set_input_files(str(photo))
    wait_for_status(page, "5 faces found")
    thumbnails = page.locator("#faces img")
    assert thumbnails.count() == 5
    thumbnails.nth(2).click()
    page.wait_for_function("document.querySelector('#face input').value.startsWith('face ')", timeout=30_000)
    chosen = page.locator("#face input").input_value()
    assert chosen.startswith("face ") and chosen in status_of(page)
    page.locator("#edit").click()
    status = wait_for_status(page, "wrote group_happy.jpg")
    assert status.startswith("edited the face in 1 of 1 frames")
    page.locator("#side-by-side-photo img").wait_for(state="visible", timeout=30_000)
    page.screenshot(path=str(tmp_path / "photo.png"), full_page=True)
    assert not page.locator("#side-by-side video").is_visible()
    edited = read_image(download(page, tmp_path, "edited.jpg"))
    assert edited.shape == read_image(photo).shape
    page.close()


def test_a_taken_port_is_a_one_line_error(app):
    url, _ = app
    port = url.rstrip("/").rsplit(":", 1)[1]
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "app.py"), "--port", port], capture_output=True,
                            text=True, timeout=START_TIMEOUT_S, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: cannot listen on 127.0.0.1:{port} (Cannot find empty port in range: {port}-{port}): "
        "choose another --port")
