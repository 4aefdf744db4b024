"""`python -m groundup` runs the command line."""

import sys

from groundup.cli import main

if __name__ == "__main__":
    sys.exit(main())
