"""False alarms on a healthy system: the main job, N times, on the healthy stand-in.

A verdict other than `pass` on the healthy stand-in is a false alarm (or a finding the README
documents as ByteBot's own, such as a terminal event lost to a swallowed emit). Runs
`starter.py demo` N times with short caps, reads each run's JSON report, and prints one line
per run, then the count and one JSON line:

    .venv/bin/python bench/false_alarms.py --runs 10                 # full-resilience, 5s faults
    .venv/bin/python bench/false_alarms.py --quick                   # 2 runs of one pod-kill
    .venv/bin/python bench/false_alarms.py --scenario network-chaos --runs 3

Not a test: it takes minutes per run, and what it measures is a rate.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import Samples, emit, figures, rounds_of, table  # noqa: E402
from bench.common import parser as bench_parser  # noqa: E402
from models.report import ScenarioReport, Verdict  # noqa: E402

QUICK_SCENARIO = """\
name: quick-pod-kill
steps:
  - fault: {action: pod-kill, duration: 8s}
verification: {settle: 40s, probe_interval: 3s}
"""


def run_once(scenario: str, duration_cap: str, settle_cap: str, work: Path) -> ScenarioReport:
    """One main job; its report."""
    subprocess.run(
        [
            sys.executable,
            str(REPO / "starter.py"),
            "demo",
            scenario,
            "--duration-cap",
            duration_cap,
            "--settle-cap",
            settle_cap,
            "--work-dir",
            str(work),
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        check=False,
    )
    (report,) = work.glob("*/reports/*.json")
    return ScenarioReport.model_validate_json(report.read_text())


def main() -> int:
    parser = bench_parser(__doc__.splitlines()[0], rounds=10, quick_rounds=2)
    parser.add_argument("--runs", type=int, default=None, help="same as --rounds")
    parser.add_argument("--scenario", default="full-resilience")
    parser.add_argument("--duration-cap", default="5s")
    parser.add_argument("--settle-cap", default="40s")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="false-alarms-"))
    scenario, runs = args.scenario, args.runs or rounds_of(args)
    if args.quick:
        (root / "quick.yaml").write_text(QUICK_SCENARIO)
        scenario = str(root / "quick.yaml")
    alarms, seconds, faults = 0, [], 0
    samples = Samples({"run": "s"})
    for n in range(runs):
        began = time.monotonic()
        report = run_once(scenario, args.duration_cap, args.settle_cap, root / f"run-{n}")
        seconds.append(time.monotonic() - began)
        samples.add("run", seconds[-1])
        faults += len(report.faults())
        alarm = report.verdict is not Verdict.PASS
        alarms += alarm
        print(
            f"run {n + 1}/{runs}: {report.verdict.value} in {seconds[-1]:.0f}s"
            + (f"  <- {report.reason[:300]}" if alarm else ""),
            flush=True,
        )
    print(f"false alarms: {alarms} of {runs} runs ({faults} faults judged)")
    print(table(samples))
    emit(
        figures(
            "false-alarms",
            samples,
            None,
            {"scenario": scenario, "runs": runs},
            {"false_alarms": alarms, "faults": faults, "rate": round(alarms / runs, 3)},
        )
    )
    return 0 if alarms == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
