#!/usr/bin/env bash
# Idempotent install of llvfsr_plugin and everything it needs, into a virtualenv cached outside the clone.
#
#   scripts/install.sh            # creates/reuses the venv, links it as ./.venv
#   LLVFSR_VENV=/path scripts/install.sh   # choose the venv location yourself
#   LLVFSR_EXTRAS=offline,dev scripts/install.sh   # fewer extras (default: all)
#
# Order matters (see README "Install"):
#   1. torch + torchvision first (pip takes them from local disk where available);
#   2. basicsr==1.4.2 with --no-build-isolation (its setup.py imports torch; with isolation pip would
#      build it inside a second, full torch download);
#   3. this package with its extras; 4. the offline weights setup (deepface's Dlib weights, LPIPS).
# The venv is keyed by a hash of this script and setup.py, so a dependency change builds a new one and
# an unchanged spec reuses the cache (CI stays fast).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

PY=${PYTHON:-python3}
EXTRAS=${LLVFSR_EXTRAS:-all}
TORCH_SPEC=${LLVFSR_TORCH_SPEC:-"torch==2.14.1 torchvision==0.29.1"}
key=$(cat scripts/install.sh setup.py | sha256sum | cut -c1-12)
VENV=${LLVFSR_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/llvfsr_plugin/venv-$EXTRAS-$key}

log() { printf '[install] %s\n' "$*" >&2; }

# Several clones (CI, a second checkout) may share one cached venv: one installer at a time.
mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock 9

if [ ! -f "$VENV/.llvfsr_complete" ]; then
  t0=$(date +%s)
  log "building virtualenv at $VENV (one time; a few minutes)"
  rm -rf "$VENV"
  mkdir -p "$(dirname "$VENV")"
  "$PY" -m venv "$VENV"
  pip_() { "$VENV/bin/python" -m pip --disable-pip-version-check "$@"; }
  pip_ install -q --upgrade pip setuptools wheel
  log "1/3 torch ($TORCH_SPEC)"
  # shellcheck disable=SC2086
  pip_ install -q $TORCH_SPEC
  log "2/3 basicsr==1.4.2 (--no-build-isolation)"
  pip_ install -q --no-build-isolation 'numpy<2' basicsr==1.4.2
  log "3/3 llvfsr_plugin[$EXTRAS] dependencies"
  pip_ install -q --no-build-isolation -e ".[$EXTRAS]"
  # basicsr pulls the GUI opencv-python (and mediapipe opencv-contrib-python); they all install the same
  # `cv2` module and the last one wins. Keep exactly one, headless, numpy-1 compatible build.
  pip_ uninstall -q -y opencv-python opencv-contrib-python opencv-python-headless >/dev/null 2>&1 || true
  pip_ install -q --force-reinstall --no-deps 'opencv-contrib-python-headless>=4.8,<4.12'
  "$VENV/bin/python" -m llvfsr_plugin.setup_offline || log "offline weight setup reported a problem (see above)"
  touch "$VENV/.llvfsr_complete"
  log "done in $(( $(date +%s) - t0 )) s; venv size $(du -sh "$VENV" | cut -f1)"
fi

# Always (re)point the editable install and the ./.venv link at *this* clone (cheap). When several clones
# share the venv, the Makefile also puts the clone first on PYTHONPATH, so each runs its own code.
"$VENV/bin/python" -m pip --disable-pip-version-check install -q --no-deps --no-build-isolation -e . >/dev/null
ln -sfn "$VENV" .venv
log "ready: $VENV (linked as ./.venv)"
