import sys

try:
    from .cli import main
except KeyboardInterrupt:  # Ctrl-C while torch is still importing: no traceback for that either
    sys.stderr.write("error: interrupted\n")
    sys.exit(130)  # cli.EXIT_INTERRUPTED, which may not be imported yet

sys.exit(main())
