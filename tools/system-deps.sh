#!/usr/bin/env bash
# Installs the Debian packages the test suite drives for real: Chromium (browser tests) and a TeX
# toolchain (the LaTeX/PDF build test, and `make pdf`: pdflatex through latexmk). Does nothing when they
# are already there.
set -euo pipefail
want=()
command -v chromium >/dev/null 2>&1 || want+=(chromium)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf ] || want+=(fonts-dejavu-core)
command -v latexmk >/dev/null 2>&1 || want+=(latexmk texlive-latex-recommended texlive-fonts-recommended texlive-latex-extra tex-gyre)
if [ ${#want[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "system-deps: please install these Debian packages (as root): ${want[*]}" >&2
  exit 1
fi
echo "system-deps: installing ${want[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
