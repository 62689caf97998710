#!/usr/bin/env bash
# Finds import cycles between the top-level modules of Rust crates.
#
# Usage: scripts/module-cycles.sh [-v] SRC_DIR [SRC_DIR...]    e.g. scripts/module-cycles.sh protocol/src node/src
#   -v  also print the whole module graph with one place that makes each edge.
# Exit status: 0 when no SRC_DIR has a cycle, 1 when one has, 2 on a usage error.
# Needs only bash, find, sort and awk (mawk, Debian's default, is enough).
#
# The graph, kept simple on purpose:
# - Nodes are the top-level modules of SRC_DIR: a file `x.rs` or a folder `x/` is module `x`, and every file
#   below `x/` (and `x.rs` itself) belongs to it. The crate roots `lib.rs` and `main.rs` are not modules, and
#   `bin/` holds separate binary crates, so all three are skipped.
# - An edge x -> y means code in module x names module y through a path that starts at the crate root:
#   `crate::y...`, `$crate::y...`, a grouped `crate::{y::A, z}` (every item at the first brace level, even over
#   several lines), or a `super::` chain that climbs back to the root (`super::y` in `x.rs`,
#   `super::super::y` in `x/a.rs`; one that stays inside x is not an edge).
# - Comments (so doc comments and intra-doc links) and one-line string literals are ignored; a string that
#   spans lines or a raw string holding a quote may be misread. Test code counts like any other code: a cycle
#   through a test module is still a cycle.
# - Inline `mod name { ... }` blocks are not tracked: a `super::` inside one is read as if written at file
#   level. In practice that is `use super::*;` in tests, which names no module and so adds no edge.
# - Plain `use y::...` paths that rely on 2015-edition or root-relative resolution are not seen.
# Each cycle is printed once (an elementary cycle, starting at its alphabetically first module), each step with
# the first file:line that makes it.
set -euo pipefail

verbose=0
if [ "${1:-}" = "-v" ]; then
  verbose=1
  shift
fi
if [ $# -eq 0 ]; then
  echo "usage: $0 [-v] SRC_DIR [SRC_DIR...]" >&2
  exit 2
fi

status=0
for dir in "$@"; do
  dir=${dir%/}
  if [ ! -d "$dir" ]; then
    echo "$0: $dir is not a directory" >&2
    exit 2
  fi
  modules=$(
    find "$dir" -mindepth 1 -maxdepth 1 \( -type f -name '*.rs' -o -type d \) -printf '%f\n' |
      sed 's/\.rs$//' | grep -vxE 'lib|main|bin' | sort -u | tr '\n' ' '
  )
  files=$(find "$dir" -type f -name '*.rs' ! -path "$dir/bin/*" ! -path "$dir/lib.rs" ! -path "$dir/main.rs" | sort)
  if [ -z "$files" ]; then
    echo "$dir: no modules"
    continue
  fi
  # shellcheck disable=SC2086 # one file name per word: the paths of a Rust crate have no spaces
  if ! awk -v dir="$dir" -v modlist="$modules" -v verbose="$verbose" '
    BEGIN {
      n = split(modlist, mods, " ")
      for (i = 1; i <= n; i++) idx[mods[i]] = i
      maxcycles = 200
    }

    FNR == 1 {
      # The file'"'"'s module path below dir: x.rs -> x (depth 1), x/mod.rs -> x, x/a.rs -> x::a (depth 2).
      rel = substr(FILENAME, length(dir) + 2)
      depth = split(rel, parts, "/")
      if (parts[depth] == "mod.rs") depth--
      top = parts[1]
      sub(/\.rs$/, "", top)
      incomment = 0
      pending = ""
    }

    {
      line = $0
      # String literals on one line become "" (a quote char literal first), then comments go: a line
      # comment, or a block comment (not nested) that may span lines.
      gsub(/'"'"'\\?"'"'"'/, "'"'"' '"'"'", line)
      gsub(/"([^"\\]|\\.)*"/, "\"\"", line)
      out = ""
      while (line != "") {
        if (incomment) {
          p = index(line, "*/")
          if (p == 0) { line = ""; break }
          line = substr(line, p + 2)
          incomment = 0
        } else {
          p = index(line, "/*")
          q = index(line, "//")
          if (q > 0 && (p == 0 || q < p)) { out = out substr(line, 1, q - 1); line = ""; break }
          if (p == 0) { out = out line; line = ""; break }
          out = out substr(line, 1, p - 1)
          line = substr(line, p + 2)
          incomment = 1
        }
      }
      line = out

      # A grouped path `crate::{` left open on an earlier line: collect until its braces close.
      if (pending != "") {
        pending = pending " " line
        if (balanced(pending)) { group(pending, pendloc); pending = "" }
      }

      rest = line
      while (match(rest, /(^|[^A-Za-z0-9_])(crate|super)::/)) {
        word = substr(rest, RSTART, RLENGTH)
        rest = substr(rest, RSTART + RLENGTH)
        if (word ~ /crate::$/) {
          level = 0
        } else {
          level = depth - 1
          while (match(rest, /^[ \t]*super[ \t]*::[ \t]*/)) {
            level--
            rest = substr(rest, RLENGTH + 1)
          }
        }
        if (level != 0) continue
        sub(/^[ \t]+/, "", rest)
        loc = rel ":" FNR
        if (substr(rest, 1, 1) == "{") {
          if (balanced(rest)) group(rest, loc)
          else { pending = rest; pendloc = loc }
        } else if (match(rest, /^[A-Za-z_][A-Za-z0-9_]*/)) {
          edge(substr(rest, 1, RLENGTH), loc)
        }
      }
    }

    # True when every brace opened in s is closed.
    function balanced(s,    i, c, d) {
      d = 0
      for (i = 1; i <= length(s); i++) {
        c = substr(s, i, 1)
        if (c == "{") d++
        else if (c == "}") { d--; if (d == 0) return 1 }
      }
      return 0
    }

    # s starts with "{": add an edge for the first name of every item at brace level 1.
    function group(s, loc,    i, c, d, start, name) {
      d = 0; start = 0
      for (i = 1; i <= length(s); i++) {
        c = substr(s, i, 1)
        if (c == "{") { d++; if (d == 1) start = 1; continue }
        if (c == "}") { d--; if (d == 0) return; continue }
        if (d != 1) continue
        if (c == ",") { start = 1; continue }
        if (start && c ~ /[A-Za-z_]/) {
          name = substr(s, i)
          match(name, /^[A-Za-z_][A-Za-z0-9_]*/)
          edge(substr(name, 1, RLENGTH), loc)
          i += RLENGTH - 1
          start = 0
        } else if (c !~ /[ \t]/) {
          start = 0
        }
      }
    }

    function edge(name, loc) {
      if (!(name in idx) || name == top) return
      if (!((top, name) in where)) where[top, name] = loc
    }

    # Elementary cycles through s whose other nodes all sort after s (so each cycle is found once).
    function walk(s, v, len,    j, k) {
      for (j = s; j <= n; j++) {
        if (!((mods[v], mods[j]) in where)) continue
        if (j == s) {
          found++
          if (found > maxcycles) continue
          path[len + 1] = s
          printf "%s: cycle: %s", dir, mods[path[1]]
          for (k = 2; k <= len + 1; k++) printf " -> %s", mods[path[k]]
          printf "\n"
          for (k = 1; k <= len; k++)
            printf "    %s -> %s  (%s)\n", mods[path[k]], mods[path[k + 1]], where[mods[path[k]], mods[path[k + 1]]]
        } else if (!onpath[j]) {
          onpath[j] = 1
          path[len + 1] = j
          walk(s, j, len + 1)
          onpath[j] = 0
        }
      }
    }

    END {
      if (verbose) {
        printf "%s: module graph (x -> y: x names crate::y)\n", dir
        for (i = 1; i <= n; i++)
          for (j = 1; j <= n; j++)
            if ((mods[i], mods[j]) in where) printf "    %s -> %s  (%s)\n", mods[i], mods[j], where[mods[i], mods[j]]
      }
      found = 0
      for (i = 1; i <= n; i++) {
        path[1] = i
        onpath[i] = 1
        walk(i, i, 1)
        onpath[i] = 0
      }
      if (found > maxcycles) printf "%s: (only the first %d cycles printed)\n", dir, maxcycles
      if (found == 0) { printf "%s: no import cycles between its %d modules\n", dir, n; exit 0 }
      printf "%s: %d import cycle(s)\n", dir, found
      exit 1
    }
  ' $files; then
    status=1
  fi
done
exit "$status"
