#!/usr/bin/env bash
# Idempotent set-up used by scripts/demo.sh and scripts/test.sh:
#   1. Debian packages the suite needs (only those missing; needs root or sudo),
#   2. a virtual environment in .venv with the package installed (editable).
# Usage: scripts/bootstrap.sh [--test]   (--test also installs the test tools)
set -euo pipefail
cd "$(dirname "$0")/.."

# Pango/HarfBuzz for WeasyPrint's PDF layout, a CJK font so Chinese never renders as
# boxes, HarfBuzz's subsetter (WeasyPrint embeds only the glyphs used: 10x faster than its
# fontTools fallback on CJK fonts), poppler-utils (pdftoppm) to look at rendered pages.
APT_PACKAGES=(libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b libharfbuzz-subset0 fonts-noto-cjk poppler-utils)
# --test only: headless LibreOffice Calc and its Python-UNO bridge, for the test that
# opens a team workbook and presses its buttons (tests/test_workbook_libreoffice.py).
# The -nogui build needs no X/GUI libraries; a full LibreOffice Calc already installed
# counts as well ("a|b" = either package). Demo users never need them.
# --test also: a Java runtime (17 or newer) for the local Spark Connect server of the
# Spark tests (tests/test_spark.py; scripts/spark-local.sh starts it from pyspark).
if [ "${1:-}" = "--test" ]; then
  APT_PACKAGES+=("libreoffice-calc-nogui|libreoffice-calc" python3-uno)
  APT_PACKAGES+=("openjdk-17-jre-headless|openjdk-21-jre-headless|default-jre-headless")
fi

install_debian_packages() {
  command -v dpkg >/dev/null 2>&1 || {
    echo "bootstrap: not a Debian/Ubuntu system; install Pango and a CJK font yourself" \
      "(with --test also LibreOffice Calc and its Python-UNO bridge)" >&2
    return 0
  }
  local missing=() pkg alternative found
  for pkg in "${APT_PACKAGES[@]}"; do
    found=""
    for alternative in ${pkg//|/ }; do
      dpkg -s "$alternative" >/dev/null 2>&1 && found=1 && break
    done
    [ -n "$found" ] || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
      echo "bootstrap: please install as root: apt-get install ${missing[*]}" >&2
      exit 1
    fi
  fi
  $sudo apt-get update -qq
  # of "a|b" alternatives, the first one this release has (Debian 13 has no Java 17)
  local chosen=()
  for pkg in "${missing[@]}"; do
    found="${pkg%%|*}"
    for alternative in ${pkg//|/ }; do
      if apt-cache show "$alternative" >/dev/null 2>&1; then found="$alternative" && break; fi
    done
    chosen+=("$found")
  done
  echo "bootstrap: installing Debian packages: ${chosen[*]}" >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${chosen[@]}" >/dev/null
}

python_bin() {
  local candidate
  for candidate in "${PYTHON:-}" python3.12 python3.11 python3 python; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  echo "bootstrap: Python 3.11 or newer is required (set PYTHON=/path/to/python3.11)" >&2
  exit 1
}

install_debian_packages
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv" >&2
  "$(python_bin)" -m venv .venv
fi
extras=""
# the tests also run on Spark (pyspark with Spark Connect: the [spark] extra)
[ "${1:-}" = "--test" ] && extras="[test,spark]"
# reinstall only when pyproject.toml changed since the last successful install
stamp=".venv/.crm-batch-installed${extras}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "bootstrap: installing Python packages into .venv" >&2
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${extras}"
  touch "$stamp"
fi
