#!/usr/bin/env bash
# The test suite from nothing: set-up, lint, tests. Extra arguments go to pytest.
#   bash scripts/test.sh           the whole suite (CI runs this)
#   bash scripts/test.sh --fast    the fast tier: every test not marked slow or ray (no training
#                                  runs, no Ray cluster), for the edit-test loop
set -euo pipefail
cd "$(dirname "$0")/.."
tier=()
if [[ "${1:-}" == "--fast" ]]; then
    shift
    tier=(-m "not slow and not ray")
fi
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/python -m pytest ${tier[@]+"${tier[@]}"} "$@"
