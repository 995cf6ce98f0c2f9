import os
import sys

# Torch's OpenMP threads spin while they wait for each other (GNU OpenMP: 300,000 spins, ~3 ms);
# on a machine where another job holds a core, the spinning thread steals the time the late one
# needs. A short spin (10,000) keeps an idle machine's speed (passive waiting lost 45% there)
# and most of a busy one's; it must be set before torch loads OpenMP, i.e. before any import of
# torch, and a wait policy or spin count the user set wins. Measured in the README ("Threads").
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ.setdefault("GOMP_SPINCOUNT", "10000")

try:
    from .cli import main
except KeyboardInterrupt:  # Ctrl-C while torch is still importing: no traceback for that either
    sys.stderr.write("error: interrupted\n")
    sys.exit(130)  # cli.EXIT_INTERRUPTED, which may not be imported yet

sys.exit(main())
