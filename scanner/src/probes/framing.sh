# The framing every sh probe shares (included by linux::SCRIPT and macos::SCRIPT):
# the nonce and path roots from stdin, and `sec NAME CMD...`, which prints a
# section between @@fleetsweep:NONCE:begin/end markers (see probes::linux::sections).
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
