#!/usr/bin/env bash
# Every chapter run as a reader outside the checkout runs it (Colab, or anyone with only the package):
# build the wheel, install it into a fresh virtual environment, and execute every chapter under nbval in
# an empty folder, where the checkout's files and its hmr_core cannot be reached.
#   bash .ci/installed_book.sh        (or make installed-test; make test runs it after the other tests)
# Settings: PYTHON (python3), TORCH (torch==2.13.0), EXTRAS (render,book,test,pretrained), KEEP=1 keeps
# the temporary folder and prints where it is.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
PYTHON=${PYTHON:-python3}
TORCH=${TORCH:-torch==2.13.0}
EXTRAS=${EXTRAS:-render,book,test,pretrained}
export PYOPENGL_PLATFORM=${PYOPENGL_PLATFORM:-egl}
unset PYTHONPATH

WORK=$(mktemp -d "${TMPDIR:-/tmp}/hmr_installed.XXXXXX")
if [ -n "${KEEP:-}" ]; then echo "temporary folder: $WORK"; else trap 'rm -rf "$WORK"' EXIT; fi

# The wheel, built from a copy of the working tree's files (tracked, and new ones not ignored), so that the
# build leaves nothing in the checkout.
mkdir -p "$WORK/src" "$WORK/dist" "$WORK/book"
git ls-files -z --cached --others --exclude-standard \
    | xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' _ \
    | tar --null -T - -cf - | tar -xf - -C "$WORK/src"
"$PYTHON" -m pip wheel --quiet --no-deps -w "$WORK/dist" "$WORK/src"
WHEEL=$(ls "$WORK"/dist/hmr_core-*.whl)

# Everything under hmr_core/data in the checkout is in the wheel.
"$PYTHON" - "$WHEEL" "$WORK/src" <<'EOF'
import sys
import zipfile
from pathlib import Path

wheel, src = sys.argv[1], Path(sys.argv[2])
names = set(zipfile.ZipFile(wheel).namelist())
data = [p.relative_to(src).as_posix() for p in (src / "hmr_core" / "data").rglob("*") if p.is_file()]
missing = [name for name in data if name not in names]
assert not missing, f"{wheel} lacks {missing}"
print(f"{Path(wheel).name}: {len(names)} files, hmr_core/data: {', '.join(sorted(n.split('/')[-1] for n in data))}")
EOF

# A fresh environment with the wheel and the versions pinned in constraints.txt.
"$PYTHON" -m venv "$WORK/venv"
VPY=$WORK/venv/bin/python
"$VPY" -m pip install --quiet -c "$REPO/constraints.txt" --upgrade pip
"$VPY" -m pip install --quiet -c "$REPO/constraints.txt" "$TORCH"
"$VPY" -m pip install --quiet -c "$REPO/constraints.txt" "$WHEEL[$EXTRAS]"
"$VPY" -m ipykernel install --sys-prefix --name python3 >/dev/null

# The chapters alone in an empty folder; hmr_core must come from the environment, not the checkout.
cp "$REPO"/chapters/*.ipynb "$WORK/book/"
cd "$WORK/book"
"$VPY" - "$WORK/venv" <<'EOF'
import sys
from pathlib import Path

import hmr_core

venv, found = Path(sys.argv[1]).resolve(), Path(hmr_core.__file__).resolve()
assert venv in found.parents and "site-packages" in found.parts, f"hmr_core is imported from {found}"
print(f"hmr_core from {found.parent}")
EOF
"$VPY" -m pytest --nbval-lax -p no:cacheprovider --rootdir "$WORK/book" -ra ./*.ipynb
