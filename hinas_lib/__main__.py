import os
import sys

# Torch's OpenMP threads spin while they wait for each other; on a machine where another job
# holds a core, the spinning thread steals the time the late one needs. Passive waiting
# (they sleep instead) must be chosen before torch loads OpenMP, i.e. before any import of
# torch; the user's own setting wins. Measured in benchmarks/RESULTS.md ("A busy machine").
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:
    from .cli import main
except KeyboardInterrupt:  # Ctrl-C while torch is still importing: no traceback for that either
    sys.stderr.write("error: interrupted\n")
    sys.exit(130)  # cli.EXIT_INTERRUPTED, which may not be imported yet

sys.exit(main())
