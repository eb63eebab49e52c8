pkginfo() {
  pkgutil --pkgs | head -n 5000 | while IFS= read -r p; do
    case $p in com.apple.*) printf 'p\t%s\n' "$p";;
      *) v=$(pkgutil --pkg-info "$p" 2>/dev/null | sed -n 's/^version: //p'); printf 'p\t%s\t%s\n' "$p" "$v";; esac
  done
}
pl() { /usr/libexec/PlistBuddy -c "Print :$2" "$1" 2>/dev/null | tr '\t\n' '  '; }
apps() {
  n=0
  for a in /Applications/*.app /Applications/*/*.app /Users/*/Applications/*.app "/Library/Application Support/Kaspersky Lab"/*/*.app; do
    [ -d "$a" ] || continue
    n=$((n+1)); [ "$n" -le 2000 ] || { echo '!truncated'; return 0; }
    i="$a/Contents/Info.plist"
    t=$(codesign -dv "$a" 2>&1 | sed -n 's/^TeamIdentifier=//p')
    printf 'a\t%s\t%s\t%s\t%s\t%s\n' "$(printf '%s' "$a" | tr '\t\n' '  ')" "$(pl "$i" CFBundleIdentifier)" "$(pl "$i" CFBundleShortVersionString)" "$(pl "$i" CFBundleName)" "$t"
  done
  return 0
}
jobs() {
  launchctl list
  for f in /Library/LaunchDaemons/*.plist /Library/LaunchAgents/*.plist /Users/*/Library/LaunchAgents/*.plist; do
    [ -f "$f" ] || continue
    printf 'f\t%s\t%s\t%s\n' "$(printf '%s' "$f" | tr '\t\n' '  ')" "$(pl "$f" Label)" "$(pl "$f" ProgramArguments:0)"
  done
  return 0
}
kexts() { if has kmutil; then kmutil showloaded --list-only 2>/dev/null; else kextstat -l; fi; }
exts() {
  for d in "/Users/"*"/Library/Application Support/Google/Chrome/"*/Extensions/* \
           "/Users/"*"/Library/Application Support/Microsoft Edge/"*/Extensions/*; do
    [ -d "$d" ] || continue
    case $d in *Chrome*) b=chrome;; *) b=edge;; esac
    printf '%s\t%s\t%s\n' "$b" "${d%/Extensions/*}" "${d##*/}"
  done
  for d in "/Users/"*"/Library/Application Support/Firefox/Profiles/"*/extensions/* \
           "/Library/Application Support/Mozilla/Extensions/"*/*; do
    [ -e "$d" ] || continue
    x=${d##*/}; printf 'firefox\t%s\t%s\n' "${d%/*}" "${x%.xpi}"
  done
  return 0
}
echo
sec sw-vers sw_vers
has pkgutil && sec pkgutil pkginfo
sec apps apps
sec launchd jobs
has systemextensionsctl && sec sysext systemextensionsctl list
sec kexts kexts
sec ps ps -axww -o pid= -o ucomm= -o args=
sec browser-extensions exts
sec paths paths "$@"
printf '@@fleetsweep:%s:done\n' "$N"
