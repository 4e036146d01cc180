#!/usr/bin/env bash
# Fetch the Debian text packages that the smoke-scale corpora read (shared/data/debian_text.py).
#
# For each package: if its files are already installed under /usr/share, use them; else if they were
# extracted before into $REPLICATIONS_DEBS_DIR/<pkg>/ (default <repo>/.cache/debs/<pkg>/), use those;
# else `apt-get download` the .deb (no root needed) and `dpkg-deb -x` it there. If the download fails,
# `apt-get update` is run once (needs root) and the download retried.
#
# Prints what is missing instead of failing (exit 0), so `make setup` goes on; --strict exits 1 when
# anything is missing.
#   usage: bash ci/fetch_offline_data.sh [--strict]
set -u

STRICT=0
[ "${1:-}" = "--strict" ] && STRICT=1

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${REPLICATIONS_DEBS_DIR:-$REPO/.cache/debs}"
mkdir -p "$DEST"

# package -> one file (relative to /) whose presence means the package's text is there.
# Keep in sync with PACKAGES in shared/data/debian_text.py.
declare -A PROBE=(
  [python3.11-doc]="usr/share/doc/python3.11/html/_sources/contents.rst.txt"
  [dict-gcide]="usr/share/dictd/gcide.dict.dz"
  [dict-wn]="usr/share/dictd/wn.dict.dz"
  [fortunes]="usr/share/games/fortunes/science"
  [debian-reference-en]="usr/share/debian-reference/debian-reference.en.txt.gz"
)
PACKAGES=(python3.11-doc dict-gcide dict-wn fortunes debian-reference-en)

UPDATED=0
MISSING=()

download() {  # download <pkg> <workdir>: apt-get download into workdir; 0 on success
  (cd "$2" && apt-get download "$1" >/dev/null 2>"$2/apt.err") && return 0
  if [ "$UPDATED" = 0 ]; then
    UPDATED=1
    if [ "$(id -u)" = 0 ]; then
      echo "  apt-get download failed; running apt-get update once"
      apt-get update >/dev/null 2>&1 || echo "  apt-get update failed"
    else
      echo "  apt-get download failed and not root: cannot run apt-get update"
    fi
    (cd "$2" && apt-get download "$1" >/dev/null 2>"$2/apt.err") && return 0
  fi
  return 1
}

for pkg in "${PACKAGES[@]}"; do
  probe="${PROBE[$pkg]}"
  if [ -e "/$probe" ]; then
    echo "[ok]      $pkg: installed (/$probe)"
    continue
  fi
  if [ -e "$DEST/$pkg/$probe" ]; then
    echo "[ok]      $pkg: cached ($DEST/$pkg)"
    continue
  fi
  echo "[fetch]   $pkg -> $DEST/$pkg"
  work="$(mktemp -d)"
  if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-deb >/dev/null 2>&1; then
    echo "[MISSING] $pkg: apt-get/dpkg-deb not available on this machine"
    MISSING+=("$pkg"); rm -rf "$work"; continue
  fi
  if download "$pkg" "$work"; then
    deb="$(ls "$work"/*.deb 2>/dev/null | head -n 1)"
    rm -rf "$DEST/$pkg.partial" && mkdir -p "$DEST/$pkg.partial"
    if [ -n "$deb" ] && dpkg-deb -x "$deb" "$DEST/$pkg.partial" && [ -e "$DEST/$pkg.partial/$probe" ]; then
      rm -rf "$DEST/$pkg" && mv "$DEST/$pkg.partial" "$DEST/$pkg"
      echo "[ok]      $pkg: extracted $(basename "$deb")"
    else
      rm -rf "$DEST/$pkg.partial"
      echo "[MISSING] $pkg: downloaded but $probe not found in the package"
      MISSING+=("$pkg")
    fi
  else
    echo "[MISSING] $pkg: apt-get download failed: $(tail -n 1 "$work/apt.err" 2>/dev/null)"
    MISSING+=("$pkg")
  fi
  rm -rf "$work"
done

if [ "${#MISSING[@]}" -gt 0 ]; then
  echo
  echo "Offline text missing: ${MISSING[*]}"
  echo "Corpora built from these packages will raise an error; the rest (CPython stdlib code and the"
  echo "generated domains) work without them. Install them (apt-get install ${MISSING[*]}) or rerun"
  echo "this script on a machine that can reach a Debian mirror."
  [ "$STRICT" = 1 ] && exit 1
fi
exit 0
