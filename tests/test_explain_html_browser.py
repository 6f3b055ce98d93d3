"""The explanation pages in a real browser: Debian's headless chromium, driven by selenium through chromedriver.

One browser serves the whole module; every topic's page is written by
``convkit explain ... --format html -o`` and opened from ``file://``. The
expected numbers come from the same ``Explanation`` objects (the engine's).
.ci/run installs chromium and chromium-driver; where they are missing the
module skips, saying so.
"""

import io
import json
import shlex
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from convkit import explain
from convkit.analysis import summary
from convkit.cli import build_parser, main
from convkit.cli.explain import EXAMPLES, topic_explanations
from convkit.explain.explanation import fmt
from convkit.explain.figures import FieldStack, Frames
from convkit.explain.html import to_html
from convkit.models import build

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
    pytest.skip("Debian's chromium and chromium-driver are not installed (.ci/run installs them with apt-get)",
                allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium (the test extra) is not installed")
from test_explain_html import MORE_CASES  # noqa: E402  (tests/ is on sys.path: conftest.py)
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1200,900")


@pytest.fixture(scope="module")
def browser():
    profile = tempfile.mkdtemp(prefix="convkit-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(CHROMEDRIVER))
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """topic -> (page path, its explanations), each page written by the CLI; plus ``summary`` for lenet5."""
    folder = tmp_path_factory.mktemp("pages")
    out = {}
    for topic, command in EXAMPLES.items():
        argv = shlex.split(command)[1:]
        path = folder / f"{topic}.html"
        assert main([*argv, "--format", "html", "-o", str(path)]) == 0
        out[topic] = (path, topic_explanations(build_parser().parse_args(argv)))
    path = folder / "summary.html"
    assert main(["summary", "lenet5", "--input", "1x28x28", "--format", "html", "-o", str(path)]) == 0
    out["summary"] = (path, summary(build("lenet5", input_size=(1, 28, 28)), (1, 28, 28)))
    for case, make in MORE_CASES.items():
        explanations = make()
        path = folder / f"{case}.html"
        path.write_text(to_html(explanations), encoding="utf-8")
        out[case] = (path, explanations)
    return out


def _open(browser, path: Path, fragment: str = ""):
    """Load the page fresh (a blank page first, so only the fragment may differ) and drain the logs."""
    browser.get("about:blank")
    browser.get_log("browser")
    browser.get_log("performance")
    browser.get(path.as_uri() + fragment)


def _errors(browser) -> list:
    return [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def _text(browser, css: str) -> str:
    return browser.find_element(By.CSS_SELECTOR, css).text


def _not_blank(png: bytes) -> None:
    image = pytest.importorskip("matplotlib.image", reason="matplotlib (the plot extra) decodes the screenshot")
    rgb = (image.imread(io.BytesIO(png), format="png")[..., :3] * 255).round().astype(np.int64)
    colours = (rgb[..., 0] << 16 | rgb[..., 1] << 8 | rgb[..., 2]).ravel()
    assert np.mean(colours == colours[0]) < 0.97 and len(np.unique(colours)) > 20


def _steps(explanations):
    return [step for e in explanations for step in e.steps]


@pytest.mark.parametrize("topic", sorted(EXAMPLES) + sorted(MORE_CASES))
def test_a_linked_step_shows_the_engines_numbers(browser, pages, topic):
    """``#step=N.F`` opens frame F of step N: its formula, terms and running totals, its cells highlighted.

    The page is opened at its first animated step; every other animated step is then reached by changing
    the fragment, as a teacher's link would.
    """
    path, explanations = pages[topic]
    steps = _steps(explanations)
    animated = [n for n, s in enumerate(steps, 1) if isinstance(s.figure, Frames) and s.figure.frames]
    targets = [(n, min(2, len(steps[n - 1].figure.frames))) for n in animated] or [(len(steps), 1)]
    _open(browser, path, "#step={}.{}".format(*targets[0]))
    for i, (number, frame_number) in enumerate(targets):
        if i:
            browser.execute_script("location.hash = arguments[0]", f"#step={number}.{frame_number}")
        WebDriverWait(browser, 5).until(lambda b: _text(b, "#where").startswith(f"step {number} of {len(steps)}"))
        current = browser.find_element(By.CSS_SELECTOR, "li.step.current")
        assert current.get_attribute("id") == f"step-{number}"
        assert len(browser.find_elements(By.CSS_SELECTOR, "li.step.current")) == 1
        step = steps[number - 1]
        if not animated:
            assert current.find_element(By.TAG_NAME, "p").text.split()[0] == step.text.replace("`", "").split()[0]
            continue
        frame = step.figure.frames[frame_number - 1]
        assert _text(browser, "#where").endswith(f"frame {frame_number} of {len(step.figure.frames)}")
        shown = browser.execute_script(_SHOWN, current)
        assert shown["caption"] == frame.caption
        assert shown["rows"] == [[term, fmt(total)] for term, total in zip(frame.terms, frame.running)]
        if frame.caption in step.formulas:
            assert shown["formula"] == frame.caption
        for mark in frame.marks:  # the marked cells are highlighted, showing the stage matrix's numbers
            stage = step.figure.stage[mark.matrix]
            if stage.too_large():
                continue
            grid = np.atleast_2d(dict(frame.values).get(mark.matrix, stage.data))
            cells = {tuple(c): text for m, role, *c, text in shown["cells"] if (m, role) == (mark.matrix, mark.role)}
            assert cells == {c: "·" if stage.blank_zeros and grid[c] == 0 else fmt(grid[c]) for c in mark.cells}
    assert _errors(browser) == []
    _not_blank(browser.get_screenshot_as_png())


_SHOWN = """
const step = arguments[0], cells = [];
step.querySelectorAll("figure.frames .stage > *").forEach((table, m) => {
  table.querySelectorAll("td").forEach(td => td.classList.forEach(c => {
    if (c.startsWith("m-")) cells.push([m, c.slice(2), td.parentNode.rowIndex, td.cellIndex, td.textContent]);
  }));
});
const rows = [...step.querySelectorAll(".panel tr")].slice(1).map(tr => [...tr.cells].map(td => td.textContent));
const formula = step.querySelector(".formula.current");
return {caption: step.querySelector(".panel .caption").textContent, rows: rows, cells: cells,
        formula: formula && formula.textContent};
"""


def _out_cell(browser):
    td = browser.find_element(By.CSS_SELECTOR, "li.step.current td.m-out")
    return browser.execute_script("return [arguments[0].parentNode.rowIndex, arguments[0].cellIndex]", td), td.text


def test_keys_buttons_slider_and_play_step_through_the_windows(browser, pages):
    path, explanations = pages["conv2d"]
    steps = _steps(explanations)
    number = next(n for n, s in enumerate(steps, 1) if isinstance(s.figure, Frames))
    result = explanations[0].result[0]

    def cell(frame: int):
        """Where the engine's output cell of ``frame`` (from 0) sits, and its number."""
        yx = np.unravel_index(frame, result.shape)
        return [int(yx[0]), int(yx[1])], fmt(result[yx])

    _open(browser, path, f"#step={number}")
    assert _out_cell(browser) == cell(0)
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.ARROW_RIGHT)
    assert _out_cell(browser) == cell(1)
    assert _text(browser, "li.step.current .panel tr:last-child td:last-child") == cell(1)[1]
    assert browser.execute_script("return location.hash") == f"#step={number}.2"
    browser.find_element(By.ID, "next").click()
    browser.find_element(By.ID, "next").click()
    assert _out_cell(browser) == cell(3)
    browser.find_element(By.ID, "prev").click()
    assert _out_cell(browser) == cell(2)
    body.send_keys(Keys.ARROW_LEFT)
    assert _out_cell(browser) == cell(1)
    body.send_keys(Keys.END)
    assert browser.find_element(By.CSS_SELECTOR, "li.step.current").get_attribute("id") == f"step-{len(steps)}"
    body.send_keys(Keys.HOME)
    assert _text(browser, "#where").startswith("step 1 of")
    slider = browser.find_element(By.ID, "slider")
    browser.execute_script("arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('input'))",
                           slider, str(number - 1 + 2))  # the steps before have one position each
    assert _out_cell(browser) == cell(2)
    body.send_keys(Keys.SPACE)  # play
    assert browser.find_element(By.ID, "play").get_attribute("aria-pressed") == "true"
    WebDriverWait(browser, 10).until(lambda b: not b.find_elements(By.CSS_SELECTOR, "li.step.current td.m-out")
                                     or _out_cell(b) != cell(2))
    browser.find_element(By.ID, "play").click()  # pause
    assert browser.find_element(By.ID, "play").get_attribute("aria-pressed") == "false"
    browser.execute_script("location.hash = '#step=2'")
    WebDriverWait(browser, 5).until(lambda b: _text(b, "#where").startswith("step 2 of"))
    assert _errors(browser) == []


@pytest.mark.parametrize("topic", ["conv2d", "receptive-field", "summary"])
def test_the_page_makes_no_network_request(browser, pages, topic):
    path = pages[topic][0]
    _open(browser, path, "#step=2")
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ARROW_RIGHT)
    requests = [json.loads(entry["message"])["message"] for entry in browser.get_log("performance")]
    urls = {r["params"]["request"]["url"] for r in requests if r["method"] == "Network.requestWillBeSent"}
    urls = {u for u in urls if not u.startswith("chrome://")}  # the browser's own pages, not this one's
    assert urls == {path.as_uri() + "#step=2"} or urls == {path.as_uri()}


def test_without_javascript_every_step_shows(browser, pages):
    path, explanations = pages["conv2d"]
    browser.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": True})
    try:
        _open(browser, path)
        shown = browser.find_elements(By.CSS_SELECTOR, "li.step")
        assert len(shown) == len(_steps(explanations)) and all(li.is_displayed() for li in shown)
        assert not browser.find_element(By.ID, "controls").is_displayed()
        formulas = [s.formulas for s in _steps(explanations) if s.formulas]
        text = browser.find_element(By.TAG_NAME, "main").text
        assert all(f in text for group in formulas for f in group)
    finally:
        browser.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": False})


def test_printed_every_step_shows_without_the_controls(browser, pages):
    path, explanations = pages["maxpool"]
    _open(browser, path, "#step=3")
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        shown = browser.find_elements(By.CSS_SELECTOR, "li.step")
        assert len(shown) == len(_steps(explanations)) and all(li.is_displayed() for li in shown)
        assert not browser.find_element(By.ID, "controls").is_displayed()
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
    assert len([li for li in shown if li.is_displayed()]) == 1  # on screen again: one step at a time


def test_jupyter_shows_the_page_in_an_iframe_whose_script_runs(browser, tmp_path):
    e = explain.max_pool2d([[1, 3, 0, 1], [2, 4, 1, 5], [0, 1, 2, 2], [1, 0, 3, 1]], 2)
    path = tmp_path / "notebook.html"
    path.write_text(f"<!DOCTYPE html><html><body>{e._repr_html_()}</body></html>", encoding="utf-8")
    _open(browser, path)
    browser.switch_to.frame(browser.find_element(By.TAG_NAME, "iframe"))
    try:
        browser.find_element(By.ID, "last").click()
        frames = len(e.steps[-1].figure.frames)
        assert _text(browser, "#where") == f"step {len(e.steps)} of {len(e.steps)} · frame {frames} of {frames}"
        assert _text(browser, "li.step.current .panel .caption") == e.steps[-1].figure.frames[-1].caption
    finally:
        browser.switch_to.default_content()
    assert _errors(browser) == []


def _field_lines(browser) -> list[str]:
    return _text(browser, "li.step.current figure.fields .info").splitlines()


@pytest.mark.parametrize("topic, unit", [("receptive-field", (1, 2)), ("receptive-field-1d", (3,)),
                                         ("output-size", (2, 1))])
def test_clicking_a_unit_shows_its_field_in_every_earlier_layer(browser, pages, topic, unit):
    path, explanations = pages[topic]
    steps = _steps(explanations)
    number, stack = next((n, s.figure) for n, s in enumerate(steps, 1) if isinstance(s.figure, FieldStack))
    _open(browser, path, f"#step={number}")
    for layer in range(len(stack.names) - 1, 0, -1):
        _click(browser, stack.shapes, layer, unit)
        lines = _field_lines(browser)
        assert lines[0] == f"{stack.names[layer]}, unit ({', '.join(map(str, unit))}):"
        expected = [f for f in stack.fields if f.layer == layer]
        assert len(lines) == 1 + len(expected) == 1 + layer
        for line, field in zip(lines[1:], expected):
            spans = [field.spans[a][u] for a, u in enumerate(unit)]
            seen = (f"rows {spans[0][0]}…{spans[0][1]}, cols {spans[1][0]}…{spans[1][1]}" if len(unit) == 2 else
                    f"positions {spans[0][0]}…{spans[0][1]}")
            assert line.startswith(f"  sees in {stack.names[field.earlier]}: {seen}")
    assert _errors(browser) == []


def _click(browser, shapes, layer: int, unit):
    """Click the centre of ``unit`` in the grid of ``layer`` (``shapes``: every layer's spatial shape)."""
    canvas = browser.find_elements(By.CSS_SELECTOR, "li.step.current figure.fields canvas")[layer]
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", canvas)
    rows, cols = shapes[layer] if len(shapes[layer]) == 2 else (1, shapes[layer][0])
    width, height = canvas.size["width"], canvas.size["height"]
    dx = (unit[-1] + 0.5) * width / cols - width / 2
    dy = ((unit[0] if len(unit) == 2 else 0) + 0.5) * height / rows - height / 2
    ActionChains(browser).move_to_element_with_offset(canvas, int(dx), int(dy)).click().perform()


def test_the_summary_page_shows_each_layers_field_in_the_input(browser, pages):
    path, result = pages["summary"]
    _open(browser, path)
    assert _errors(browser) == []
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.ARROW_RIGHT)
    assert f"Total params: {result.total_params:,}" in _text(browser, "li.step.current")
    body.send_keys(Keys.END)
    data = browser.execute_script("return JSON.parse(document.getElementById('convkit-data').textContent)")
    stack = next(step["figure"] for step in data["steps"] if step["figure"])
    layer = len(stack["names"]) - 1
    _click(browser, stack["shapes"], layer, (2, 1))
    lines = _field_lines(browser)
    (r0, r1), (c0, c1) = result.field_of(stack["names"][layer].split()[0], (2, 1))
    assert lines[1].startswith(f"  sees in input: rows {r0}…{r1}, cols {c0}…{c1}")
    _not_blank(browser.get_screenshot_as_png())
