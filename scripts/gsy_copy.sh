# Shared by install_gsy_e.sh and install_gsy_sdk.sh (sourced, not run): copy a source tree from a
# local copy, and make a fresh venv. Both refuse to replace what exists unless $force is 1;
# $me names the calling script in their messages.

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
