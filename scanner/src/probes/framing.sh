# The framing every sh probe shares (included by linux::SCRIPT and macos::SCRIPT):
# the nonce and path roots from stdin, `sec NAME CMD...`, which prints a
# section between @@fleetsweep:NONCE:begin/end markers (see probes::linux::sections),
# and `paths ROOT...`, the bounded walk of the catalog's install roots.
T=$(printf '\t'); R=$(printf '\r')
IFS= read -r N || exit 2
case $N in ''|*[!A-Za-z0-9]*) echo 'fleetsweep: bad nonce' >&2; exit 2;; esac
set --
while IFS= read -r l; do
  case $l in
    .) break;;
    *"$R"*|*"$T"*) ;;
    /*) [ "$#" -lt 64 ] && set -- "$@" "$l";;
  esac
done
exec </dev/null
has() { command -v "$1" >/dev/null 2>&1; }
sec() {
  s=$1; shift
  printf '@@fleetsweep:%s:begin %s\n' "$N" "$s"
  "$@"
  printf '\n@@fleetsweep:%s:end %s rc=%s\n' "$N" "$s" "$?"
}
paths() {
  for r in "$@"; do
    [ -e "$r" ] || [ -L "$r" ] || continue
    find "$r" -maxdepth 3 2>/dev/null | {
      n=0
      while IFS= read -r f; do
        n=$((n+1)); [ "$n" -le 2000 ] || { printf '!truncated\t%s\n' "$r"; break; }
        if [ -L "$f" ]; then k=l; elif [ -d "$f" ]; then k=d; elif [ -f "$f" ]; then k=f; else k=o; fi
        printf '%s\t%s\n' "$k" "$f"
      done
    }
  done
  return 0
}
