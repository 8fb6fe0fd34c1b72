#!/usr/bin/env bash
# Formats every tracked C++ file (.cpp, .hpp) with clang-format and the repository's
# .clang-format (Google's style, 100 columns).
#   scripts/format.sh            rewrites the files in place
#   scripts/format.sh --check    changes nothing; lists the files that are not formatted and fails
# Debian's clang-format 14 (apt-get install clang-format); other versions may place a few
# line breaks differently.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "format: clang-format not found (apt-get install clang-format)" >&2; exit 1; }
mapfile -t files < <(git ls-files '*.cpp' '*.hpp')
case "${1:-}" in
  "") clang-format -i "${files[@]}" ;;
  --check)
    unformatted=()
    for f in "${files[@]}"; do
      clang-format --dry-run --Werror "$f" 2>/dev/null || unformatted+=("$f")
    done
    if [ ${#unformatted[@]} -gt 0 ]; then
      echo "format: ${#unformatted[@]} of ${#files[@]} files are not formatted (scripts/format.sh fixes them):" >&2
      printf '  %s\n' "${unformatted[@]}" >&2
      exit 1
    fi
    echo "format: all ${#files[@]} files are formatted" ;;
  *) echo "usage: scripts/format.sh [--check]" >&2; exit 2 ;;
esac
