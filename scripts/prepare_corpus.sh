#!/usr/bin/env bash
# Writes the raw King James Bible text (Debian package bible-kjv) to the given path:
#   scripts/prepare_corpus.sh data/kjv_raw.txt
# The text is `bible "gen1:1-rev22:21"` verbatim (about 4.3 MB); data::clean_kjv_text (speedlm prepare-data --format kjv)
# turns it into the clean training text. Written to a temporary file, then renamed.
set -euo pipefail
if [ $# -ne 1 ]; then
  echo "usage: $0 OUT_PATH" >&2
  exit 2
fi
out=$1
if ! command -v bible >/dev/null; then
  echo "$0: the 'bible' tool is missing: install the Debian package bible-kjv" >&2
  exit 1
fi
mkdir -p "$(dirname "$out")"
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
bible "gen1:1-rev22:21" >"$tmp"
mv "$tmp" "$out"
