"""`make bench`: the age benchmark, then the recording benchmark, in one run.

    python -m bench
"""

import sys

from bench.age import run_age_benchmark
from bench.record import Commands, run_record_benchmark

if __name__ == "__main__":
    try:
        Commands.find()  # before the minutes of the age benchmark, not after them
    except RuntimeError as error:
        sys.exit(f"make bench: {error}")
    print("\n".join(run_age_benchmark()), flush=True)
    print()
    print("\n".join(run_record_benchmark()))
