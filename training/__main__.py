"""`python -m training ...`: the same as `anyres-train`, for torchrun and environments without scripts;
`python -m training generate ...` is `anyres-generate`, `python -m training eval ...` `anyres-eval`."""

import sys

from .commands.train import main

if __name__ == "__main__":  # importing the module (as the layering test does) runs nothing
    if sys.argv[1:2] == ["generate"]:  # anyres-generate, a command of its own
        from .commands.generate import main as generate

        sys.exit(generate(sys.argv[2:]))
    if sys.argv[1:2] == ["eval"]:  # anyres-eval, also under torchrun
        from .commands.eval import main as evaluate

        sys.exit(evaluate(sys.argv[2:]))
    sys.exit(main())
