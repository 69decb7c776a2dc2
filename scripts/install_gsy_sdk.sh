#!/usr/bin/env bash
# Install Grid Singularity's gsy-e-sdk (and its gsy-framework) into a venv without GitHub access,
# following ../shared/reference/gsy-grid-operator-api.md §4.2:
#   1. pip install <framework copy>
#   2. pip install -r <the SDK's requirements/base.txt without its "-e git+..." line>
#   3. pip install --no-deps <sdk copy>
# (The SDK's setup.py adds "gsy-framework @ git+https://github.com/...", which pip cannot fetch
# here; --no-deps skips it, and step 1 already provides the framework.)
#
# Usage: scripts/install_gsy_sdk.sh [--force] [--unit-tests] FRAMEWORK SDK TARGET
#   FRAMEWORK, SDK  a source directory (with setup.py) or a git repository (bare mirrors too),
#                   whose HEAD is exported with `git archive`
#   TARGET          gets src/gsy-framework, src/gsy-e-sdk (source copies; the grid-operator
#                   scripts and their resources/ live only there) and venv/
#   --force         replace TARGET/src/* and TARGET/venv if they exist
#   --unit-tests    also install the SDK's pinned test tools (pytest 8.3.5, pytest-mock 3.14.0,
#                   pluggy 1.5.0, iniconfig 2.1.0, from its requirements/dev.txt) and run its
#                   unit_tests/; not needed to run the scripts
# Env: PYTHON (default python3; the SDK targets Python 3.11).
#
# Example (the mirrors on this machine):
#   scripts/install_gsy_sdk.sh /work/.mirror/gridsingularity+gsy-framework/repo \
#       /work/.mirror/gridsingularity+gsy-e-sdk/repo /work/gsy-sdk
set -euo pipefail
me=install_gsy_sdk.sh
# shellcheck source=scripts/gsy_copy.sh
source "$(dirname "${BASH_SOURCE[0]}")/gsy_copy.sh"

force=0
unit_tests=0
while [[ $# -gt 0 && $1 == --* ]]; do
    case $1 in
        --force) force=1 ;;
        --unit-tests) unit_tests=1 ;;
        --help | -h) print_help ;;
        *) unknown_option "$1" ;;
    esac
    shift
done
expect_arguments 3 $# "[--force] [--unit-tests] FRAMEWORK SDK TARGET"
setup_target "$1" "$2" gsy-e-sdk "$3" "${PYTHON:-python3}"

echo "== 1/3 gsy-framework from $src/gsy-framework"
"${pip[@]}" install "$src/gsy-framework"

echo "== 2/3 the SDK's pinned third-party requirements (without the git+ line)"
reqs=$target/sdk-requirements-nogit.txt
without_git_lines "$src/gsy-e-sdk/requirements/base.txt" "$reqs"
if grep -q 'git+' "$reqs"; then
    echo "install_gsy_sdk.sh: $reqs still names a git+ URL:" >&2
    grep -n 'git+' "$reqs" >&2
    exit 1
fi
"${pip[@]}" install -r "$reqs"

echo "== 3/3 gsy-e-sdk from $src/gsy-e-sdk (--no-deps)"
"${pip[@]}" install --no-deps "$src/gsy-e-sdk"

"${pip[@]}" check
"$venv/bin/python" -c "from gsy_e_sdk.aggregator import Aggregator; from gsy_e_sdk.rest_market import RestMarketClient"
echo "import check ok: gsy_e_sdk.aggregator.Aggregator, gsy_e_sdk.rest_market.RestMarketClient"

if [[ $unit_tests -eq 1 ]]; then
    # The pins of the SDK's requirements/dev.txt: an unpinned pytest pulls a pluggy that
    # breaks the SDK's own pluggy==1.5.0 pin.
    "${pip[@]}" install pytest==8.3.5 pytest-mock==3.14.0 pluggy==1.5.0 iniconfig==2.1.0
    "${pip[@]}" check
    (cd "$src/gsy-e-sdk" && "$venv/bin/python" -m pytest -q -p no:cacheprovider unit_tests)
fi

cat <<MSG

gsy-e-sdk installed. For the integration test (tests/gsy_sdk/test_sdk_scripts.py):
export GSY_SDK_PYTHON=$venv/bin/python
export GSY_SDK_SRC=$src/gsy-e-sdk
MSG
