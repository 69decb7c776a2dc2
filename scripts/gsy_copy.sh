# Shared by install_gsy_e.sh and install_gsy_sdk.sh (sourced, not run): copy a source tree from a
# local copy, make a fresh venv, lay out a target folder with both, and drop the "git+" lines of a
# requirements file. Nothing that exists is replaced unless $force is 1; $me names the calling
# script in the messages.

# print_help: the calling script's header comment (its lines after the #! line), then exit 0.
print_help() {
    awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0"
    exit 0
}

unknown_option() {
    echo "$me: unknown option $1" >&2
    exit 2
}

# expect_arguments WANT GOT USAGE: exit 2 with the usage line unless GOT == WANT.
expect_arguments() {
    if [[ $2 -ne $1 ]]; then
        echo "usage: $0 $3 (see --help)" >&2
        exit 2
    fi
}

# copy_source IN OUT: IN is a source directory with setup.py (copied without .git, build output or
# egg-info) or a git repository (its HEAD exported); IN and OUT the same directory: used in place.
copy_source() {
    local in=$1 out=$2
    if [[ -d $in && -d $out && $(cd "$in" && pwd -P) == $(cd "$out" && pwd -P) ]]; then
        echo "using $out in place"
        return
    fi
    if [[ -e $out ]]; then
        if [[ $force -eq 0 ]]; then
            echo "$me: $out exists (use --force to replace it)" >&2
            exit 1
        fi
        rm -rf "$out"
    fi
    mkdir -p "$out"
    if [[ -f $in/setup.py ]]; then
        (cd "$in" && tar -c --exclude=.git --exclude=.tox --exclude=./build --exclude='*.egg-info' .) | tar -x -C "$out"
        echo "copied $in -> $out"
    elif git -C "$in" rev-parse --git-dir >/dev/null 2>&1; then
        git -C "$in" archive HEAD | tar -x -C "$out"
        echo "exported $in @ $(git -C "$in" rev-parse HEAD) -> $out"
    else
        echo "$me: $in is neither a source directory with setup.py nor a git repository" >&2
        exit 1
    fi
}

# fresh_venv PYTHON VENV: a new venv at VENV made by PYTHON.
fresh_venv() {
    local python=$1 venv=$2
    if [[ -e $venv ]]; then
        if [[ $force -eq 0 ]]; then
            echo "$me: $venv exists (use --force to replace it)" >&2
            exit 1
        fi
        rm -rf "$venv"
    fi
    "$python" -m venv "$venv"
}

# setup_target FRAMEWORK PACKAGE NAME TARGET PYTHON: TARGET/src/gsy-framework copied from
# FRAMEWORK, TARGET/src/NAME from PACKAGE, a fresh TARGET/venv made by PYTHON. Sets $target (made
# absolute), $src, $venv and $pip (the venv's pip, an array to run).
setup_target() {
    local framework_in=$1 package_in=$2 name=$3 python=$5
    mkdir -p "$4"
    target=$(cd "$4" && pwd)
    src=$target/src
    venv=$target/venv
    copy_source "$framework_in" "$src/gsy-framework"
    copy_source "$package_in" "$src/$name"
    fresh_venv "$python" "$venv"
    pip=("$venv/bin/python" -m pip)
}

# without_git_lines REQUIREMENTS OUT: REQUIREMENTS without its "git+..." (or "-e git+...") lines,
# which pip cannot fetch here, written to OUT.
without_git_lines() {
    grep -v -E '^[[:space:]]*(-e[[:space:]]+)?git\+' "$1" >"$2"
}
