"""What a person sees: the run's page in the Temporal Web UI and the HTML report, in a browser.

Debian's chromium (installed by scripts/install-system-packages.sh), driven headless by
playwright from PyPI with `executable_path` (no browser is downloaded). The dev server runs
with its Web UI; the UI polls, so the test waits for content, never for network idle.
Screenshots land in the test's temp dir.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from control.reports import write_report
from control.runs import ui_link
from devstack.temporal import TemporalDevServer
from models.report import ScenarioReport, Verdict
from models.scenario import ScenarioInput
from tests.support.scenario_runs import Harness, pod_kill, scenario
from tests.support.standins import MarkerBackend

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
WAIT_MS = 90_000  # a busy 2-core machine: the UI's first render can take a while
pytestmark = pytest.mark.timeout(400)


@pytest.fixture(scope="module")
def ui_server() -> Iterator[TemporalDevServer]:
    with TemporalDevServer(ui=True) as server:
        yield server


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox"], headless=True
        )
        yield chromium
        await chromium.close()


async def _new_page(browser: Browser) -> Page:
    page = await browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(WAIT_MS)
    return page


async def test_the_run_page_and_the_html_report_show_the_verdict_faults_and_plots(
    ui_server: TemporalDevServer, browser: Browser, tmp_path: Path
) -> None:
    client = await Client.connect(ui_server.address, data_converter=pydantic_data_converter)
    harness = Harness(client, MarkerBackend(tmp_path / "faults"))
    async with harness.worker():
        run = ScenarioInput(scenario=scenario(pod_kill("2s"), pod_kill("1s", name="second")))
        handle = await harness.start(run)
        report: ScenarioReport = await handle.result()
    assert report.verdict is Verdict.PASS, report.reason

    page = await _new_page(browser)
    await page.goto(ui_link(ui_server.ui_url, "default", handle.id))
    await expect(page.get_by_text("COMPLETED").first).to_be_visible()
    await expect(page.get_by_text("ChaosScenarioWorkflow").first).to_be_visible()
    # Each fault's child row in the timeline names the fault, its target and its duration.
    child = page.get_by_text("pod-kill on bytebot/app=bytebot-temporal-worker (one) for 2s")
    await expect(child.first).to_be_visible()
    await expect(page.get_by_text('"verdict": "pass"').first).to_be_visible()
    await page.screenshot(path=tmp_path / "web-ui-run.png", full_page=True)

    files = write_report(report, tmp_path / "reports")
    report_page = await _new_page(browser)
    await report_page.goto(files.html.as_uri())
    await expect(report_page.locator("h1")).to_contain_text("pass")
    fault_rows = report_page.locator("tr.fault-row")
    await expect(fault_rows).to_have_count(2)
    await expect(fault_rows.nth(1)).to_contain_text("second")
    plots = report_page.locator("section.fault .plot svg")
    await expect(plots).to_have_count(2)
    box = await plots.first.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 200  # drawn, not empty
    await report_page.screenshot(path=tmp_path / "report.png", full_page=True)
    assert (tmp_path / "web-ui-run.png").stat().st_size > 10_000
