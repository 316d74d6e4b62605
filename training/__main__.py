"""`python -m training ...`: the same as `anyres-train`, for torchrun and environments without scripts."""

import sys

from .cli import main

if __name__ == "__main__":  # importing the module (as the layering test does) runs nothing
    sys.exit(main())
