#!/usr/bin/env bash
# Inspect the package `make deb` built (target/debian/tahoe_*.deb) as an
# operator's machine would see it: what it holds, that its binary runs and
# names this commit, that its man pages render and its bash completion
# loads, that lintian finds no error, and that systemd accepts the unit
# (verify prints nothing; the offline security score stays low); then,
# as root, installs it, runs a node as its system user the way the unit
# does, stops it with SIGTERM and purges the package. Tools missing are
# installed (lintian, man-db), or the script fails saying so.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "check-deb: FAIL: $*" >&2; exit 1; }
need() {
    command -v "$1" >/dev/null && return
    SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
    $SUDO apt-get update -q >/dev/null
    $SUDO apt-get install -y -q "$2" >/dev/null || fail "$1 missing and apt-get install $2 failed"
}
need lintian lintian
need man man-db
need systemd-analyze systemd

debs=(target/debian/tahoe_*.deb)
[ ${#debs[@]} = 1 ] && [ -f "${debs[0]}" ] || fail "expected one target/debian/tahoe_*.deb (run make deb), found: ${debs[*]}"
deb=${debs[0]}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# What it holds.
dpkg-deb --contents "$deb" | awk '{print $6}' | sed 's#^\./##' > "$work/contents"
for f in usr/bin/tahoe \
    lib/systemd/system/tahoe@.service \
    usr/share/bash-completion/completions/tahoe \
    usr/share/zsh/vendor-completions/_tahoe \
    usr/share/fish/vendor_completions.d/tahoe.fish \
    usr/share/doc/tahoe/copyright \
    usr/share/doc/tahoe/changelog.Debian.gz \
    usr/share/doc/tahoe/README.md \
    usr/share/man/man1/tahoe.1.gz; do
    grep -qx "$f" "$work/contents" || fail "$f not in the package"
done
for f in examples/configs/*.toml; do
    grep -qx "usr/share/doc/tahoe/examples/$(basename "$f")" "$work/contents" \
        || fail "example $f not in the package"
done

dpkg-deb -x "$deb" "$work/root"
bin="$work/root/usr/bin/tahoe"

# Its binary runs and names the commit it was built from.
want="tahoe $(cargo metadata --no-deps --format-version 1 | python3 -c 'import json,sys; print([p["version"] for p in json.load(sys.stdin)["packages"] if p["name"]=="tahoe"][0])') (commit $(git rev-parse --short=12 HEAD))"
got=$("$bin" --version)
[ "$got" = "$want" ] || fail "tahoe --version says '$got', expected '$want'"

# A man page for every command and every debug tool, each rendering
# without a warning from groff.
commands() { "$bin" "$@" --help | awk '/^Commands:/{on=1; next} /^$/{on=0} on && $1 != "help" {print $1}'; }
for c in $(commands); do
    page="usr/share/man/man1/tahoe-$c.1.gz"
    grep -qx "$page" "$work/contents" || fail "no man page for tahoe $c"
done
for c in $(commands debug); do
    grep -qx "usr/share/man/man1/tahoe-debug-$c.1.gz" "$work/contents" || fail "no man page for tahoe debug $c"
done
for page in "$work"/root/usr/share/man/man1/*.1.gz; do
    out=$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l "$page" 2>&1 >/dev/null) \
        || fail "man cannot render $page: $out"
    [ -z "$out" ] || fail "man warns on $(basename "$page"): $out"
done
LC_ALL=C.UTF-8 man -l "$work/root/usr/share/man/man1/tahoe-put.1.gz" 2>/dev/null | grep -q -- "--mutable" \
    || fail "tahoe-put(1) does not document --mutable"

# The bash completion loads and completes a command name.
compl=$(bash -c "source '$work/root/usr/share/bash-completion/completions/tahoe'
COMP_WORDS=(tahoe creat); COMP_CWORD=1; COMP_LINE='tahoe creat'; COMP_POINT=11
_tahoe tahoe creat tahoe; printf '%s\n' \"\${COMPREPLY[@]}\"")
echo "$compl" | grep -qx "create-client" || fail "bash completion of 'tahoe creat' gave: $compl"

# lintian: no error (warnings are printed for the reader).
lintian --fail-on error --allow-root "$deb" || fail "lintian reports errors"

# The maintainer scripts parse.
dpkg-deb -e "$deb" "$work/control"
for s in postinst prerm postrm; do sh -n "$work/control/$s" || fail "$s does not parse"; done

# systemd: the unit as installed, its binary where the package put it.
mkdir "$work/units"
sed "s#/usr/bin/tahoe#$bin#" "$work/root/lib/systemd/system/tahoe@.service" > "$work/units/tahoe@node1.service"
out=$(systemd-analyze verify --man=no "$work/units/tahoe@node1.service" 2>&1) || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify complains: $out"
score=$(systemd-analyze security --offline=true "$work/units/tahoe@node1.service" 2>&1 \
    | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
[ -n "$score" ] || fail "systemd-analyze security gave no score"
python3 -c "import sys; sys.exit(0 if float('$score') <= 2.0 else 1)" \
    || fail "the unit's exposure level is $score (more than 2.0): a hardening option went missing"

# Installed for real (as root; CI machines are): the package makes its
# system user and /var/lib/tahoe; a node made there by that user runs the
# unit's ExecStart as the unit's User= and stops on SIGTERM as on `tahoe
# stop`, cleanly; then the package is purged (the user stays, as
# designed). The unit's sandbox itself needs systemd as PID 1, which these
# machines lack: systemd-analyze above checks it, not a running unit.
if [ "$(id -u)" = 0 ]; then
    if dpkg -s tahoe >/dev/null 2>&1; then
        fail "a tahoe package is installed on this machine already: not touching it"
    fi
    pid=""
    installed() {
        [ -z "$pid" ] || kill -9 "$pid" 2>/dev/null || true
        if [ -f /var/lib/tahoe/check-deb/node.pid ]; then
            kill -9 "$(cat /var/lib/tahoe/check-deb/node.pid)" 2>/dev/null || true
        fi
        rm -rf /var/lib/tahoe/check-deb
        if dpkg -s tahoe >/dev/null 2>&1; then dpkg --purge tahoe >/dev/null; fi
    }
    trap 'installed; rm -rf "$work"' EXIT
    apt-get install -y -q "./$deb" >/dev/null || fail "apt-get install of the package failed"
    [ "$(command -v tahoe)" = /usr/bin/tahoe ] || fail "tahoe is not /usr/bin/tahoe once installed"
    uid=$(getent passwd tahoe | cut -d: -f3) || fail "the package made no tahoe user"
    [ "$uid" -lt 1000 ] || fail "the tahoe user (uid $uid) is not a system user"
    [ "$(stat -c '%U %a' /var/lib/tahoe)" = "tahoe 750" ] \
        || fail "/var/lib/tahoe is $(stat -c '%U %a' /var/lib/tahoe), not tahoe 750"
    tahoe create-queen -d "$work/queen" --listen 127.0.0.1:0 >/dev/null
    url=$(cat "$work/queen/introducer.url")
    base=/var/lib/tahoe/check-deb
    runuser -u tahoe -- tahoe create-client -d "$base" --introducer "$url" >/dev/null \
        || fail "the tahoe user cannot make a node in /var/lib/tahoe"
    # The unit's ExecStart, as its User=.
    runuser -u tahoe -- /usr/bin/tahoe run --basedir "$base" 2>"$work/run.log" &
    pid=$!
    for _ in $(seq 100); do [ -f "$base/status.json" ] && break; sleep 0.1; done
    [ -f "$base/status.json" ] || fail "the node did not start: $(cat "$work/run.log")"
    [ "$(stat -c %U "$base/private/node.key")" = tahoe ] && [ "$(stat -c %a "$base/private/node.key")" = 600 ] \
        || fail "the node's key is not the tahoe user's, 0600"
    kill -TERM "$(cat "$base/node.pid")"
    for _ in $(seq 350); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && fail "the node did not stop within 35 s of SIGTERM"
    rc=0; wait "$pid" || rc=$?
    pid=""
    [ "$rc" = 0 ] || fail "the node exited $rc on SIGTERM: $(cat "$work/run.log")"
    [ ! -f "$base/status.json" ] || fail "SIGTERM left status.json (not the clean stop of tahoe stop)"
    installed
    ! dpkg -s tahoe >/dev/null 2>&1 || fail "dpkg --purge left the package"
    [ ! -e /var/lib/tahoe ] || fail "purge left an empty /var/lib/tahoe"
else
    echo "check-deb: FAIL: the install check needs root (apt-get install, runuser)" >&2
    exit 1
fi

echo "check-deb: $deb ok ($(wc -l < "$work/contents") paths, exposure $score, installed, run as tahoe, stopped by SIGTERM, purged)"
