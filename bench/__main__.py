"""`make bench`: the age benchmark, the header cost per recipient type, the recording benchmark, then the
start-up, in one run; its report is kept.

    python -m bench [PYTHON …]

Our side of each benchmark runs under this Python and under each PYTHON given (`make bench` gives the
venv with Debian bookworm's cryptography 38.0.4), its figures in a column each (bench/columns.py).

Everything it prints, from what the run measured on to the figures BENCHMARKS.md quotes, is written to
bench/report.txt once the run is over (never a half run's), to be committed with BENCHMARKS.md: the
timings there are checked against it (bench/figures.py).
"""

import sys

from bench.age import run_age_benchmark
from bench.columns import columns_for
from bench.figures import BENCH_REPORT, ROOT
from bench.headers import run_headers_benchmark
from bench.provenance import run_ended, run_started
from bench.ready import run_ready_benchmark
from bench.record import Commands, run_record_benchmark

if __name__ == "__main__":
    try:
        commands = Commands.find()  # before the minutes of the age benchmark, not after them
        columns = columns_for(sys.argv[1:])
    except RuntimeError as error:
        sys.exit(f"make bench: {error}")
    report: list[str] = []
    for part in (lambda: run_started(commands), lambda: run_age_benchmark(columns=columns),
                 lambda: run_headers_benchmark(columns=columns),
                 lambda: run_record_benchmark(columns=columns), lambda: run_ready_benchmark(columns=columns),
                 run_ended):
        lines = part()
        print("\n".join(lines), end="\n\n", flush=True)
        report += [*lines, ""]
    (ROOT / BENCH_REPORT).write_text("\n".join(report), encoding="utf-8")
    print(f"written to {BENCH_REPORT}: commit it with BENCHMARKS.md, which must quote it (make docs-check)")
