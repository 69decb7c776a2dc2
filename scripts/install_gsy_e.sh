#!/usr/bin/env bash
# Install Grid Singularity's gsy-e (the exchange, with its gsy-framework) into a venv without
# GitHub access, following ../shared/reference/gsy-live-loop.md §2 (gsy-e and gsy-framework are
# not on PyPI):
#   1. pip install <framework copy>
#   2. pip install -r <gsy-e's requirements/base.txt without its "-e git+..." line>
#   3. pip install psutil==7.0.0 (imported by gsy-e, pinned only in its dev requirements)
#   4. pip install --no-deps <gsy-e copy> (its setup.py would pull dev requirements + a git URL)
#
# Usage: scripts/install_gsy_e.sh [--force] FRAMEWORK GSY_E TARGET
#   FRAMEWORK, GSY_E  a source directory (with setup.py) or a git repository (bare mirrors too),
#                     whose HEAD is exported with `git archive`
#   TARGET            gets src/gsy-framework, src/gsy-e and venv/
#   --force           replace TARGET/src/* and TARGET/venv if they exist
# Env: PYTHON (default python3; gsy-e's requirements are pip-compiled for Python 3.11).
#
# Example (the mirrors the `fetch` tool leaves on this machine):
#   scripts/install_gsy_e.sh /work/.mirror/gridsingularity+gsy-framework/repo \
#       /work/.mirror/gridsingularity+gsy-e/repo /work/gsy-e-inst
# then: export GSY_E_PYTHON=/work/gsy-e-inst/venv/bin/python
set -euo pipefail
me=install_gsy_e.sh
# shellcheck source=scripts/gsy_copy.sh
source "$(dirname "${BASH_SOURCE[0]}")/gsy_copy.sh"

force=0
while [[ $# -gt 0 && $1 == --* ]]; do
    case $1 in
        --force) force=1 ;;
        --help | -h) print_help ;;
        *) unknown_option "$1" ;;
    esac
    shift
done
expect_arguments 3 $# "[--force] FRAMEWORK GSY_E TARGET"
setup_target "$1" "$2" gsy-e "$3" "${PYTHON:-python3}"

echo "== 1/4 gsy-framework from $src/gsy-framework"
"${pip[@]}" install -q "$src/gsy-framework"

echo "== 2/4 gsy-e's pinned third-party requirements (without the git+ line)"
reqs=$target/gsy-e-requirements-nogit.txt
without_git_lines "$src/gsy-e/requirements/base.txt" "$reqs"
"${pip[@]}" install -q -r "$reqs"

echo "== 3/4 psutil (imported by gsy-e, pinned only in its dev requirements)"
"${pip[@]}" install -q psutil==7.0.0

echo "== 4/4 gsy-e from $src/gsy-e (--no-deps)"
"${pip[@]}" install -q --no-deps "$src/gsy-e"

"$venv/bin/python" -c "import gsy_e, gsy_framework; from gsy_e.gsy_e_core.cli import main; print('import check ok: gsy_e, gsy_framework')"

cat <<MSG

gsy-e installed. For the tests that run it (tests/gsy_remote/test_gsy_e_redis.py):
export GSY_E_PYTHON=$venv/bin/python
MSG
