#!/usr/bin/env bash
# deploy.sh HOST: build sluice, install it on HOST over ssh, restart, wait for /readyz.
#
# On HOST (as root, or through `sudo -n` for another ssh user):
#   /usr/local/lib/sluice/sluice-<version>-<commit>   every deployed binary
#   /usr/local/bin/sluice -> ../lib/sluice/sluice-...  switched atomically (ln -sfn + mv -T)
#   /etc/systemd/system/sluice.service                 the unit (replaced)
#   /etc/sluice/sluice.env                             kept; the example only when absent
#   /etc/sluice/sluice.env.example                     the current example (replaced)
# If the new binary is not ready (/readyz 200: it reaches SQS, no breaker open)
# in time, the symlink and the unit go back to the previous ones, which are
# restarted, and deploy.sh exits 1. (/healthz is not enough: it is 200 while the
# worker still cannot reach SQS, e.g. without credentials.)
set -euo pipefail

usage() {
  cat <<'EOF'
usage: ./deploy.sh [options] [user@]HOST

  --binary PATH          deploy this binary instead of building dist/sluice
  --port N               ssh port (default 22)
  --identity FILE        ssh private key
  --ssh-option OPT       extra ssh/scp option, e.g. StrictHostKeyChecking=accept-new (repeatable)
  --root DIR             install under DIR on HOST instead of / (tests)
  --health-timeout SECS  how long to wait for /readyz (default 30)
  --keep N               old binaries to keep in /usr/local/lib/sluice (default 3)
  --dry-run              print every step without doing it
  -h, --help             this text

environment:
  SYSTEMCTL   systemctl command on HOST (default systemctl)
  DENO        deno command for the build (default: deno if on PATH, else npx -y deno@2.9.6)
EOF
}

log() { printf 'deploy: %s\n' "$*"; }
die() {
  printf 'deploy: error: %s\n' "$*" >&2
  exit 1
}

binary=""
ssh_port=22
identity=""
root=""
health_timeout=30
keep=3
dry_run=0
host=""
ssh_extra=()

while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary="${2:?--binary needs a path}"; shift 2 ;;
    --port) ssh_port="${2:?--port needs a number}"; shift 2 ;;
    --identity) identity="${2:?--identity needs a file}"; shift 2 ;;
    --ssh-option) ssh_extra+=(-o "${2:?--ssh-option needs an option}"); shift 2 ;;
    --root) root="${2:?--root needs a directory}"; shift 2 ;;
    --health-timeout) health_timeout="${2:?--health-timeout needs seconds}"; shift 2 ;;
    --keep) keep="${2:?--keep needs a number}"; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) usage >&2; die "unknown option $1" ;;
    *)
      [ -z "$host" ] || die "only one HOST, got $host and $1"
      host="$1"; shift ;;
  esac
done
[ -n "$host" ] || { usage >&2; die "HOST is required"; }
case "$ssh_port$health_timeout$keep" in
  *[!0-9]*) die "--port, --health-timeout and --keep take whole numbers" ;;
esac
root="${root%/}"
systemctl_cmd="${SYSTEMCTL:-systemctl}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# One multiplexed connection for every ssh and scp below: one handshake, not ten.
# In /tmp, not $TMPDIR: a socket path must stay under ~100 characters (macOS's $TMPDIR is long).
control_dir="$(mktemp -d /tmp/sluice-deploy-ssh.XXXXXX)"
ssh_opts=(-o BatchMode=yes -o ConnectTimeout=10 -o ControlMaster=auto
  -o "ControlPath=$control_dir/%C" -o ControlPersist=120)
# (the +-form keeps bash 3.2, macOS's, quiet about an empty array under set -u)
ssh_opts+=(${ssh_extra[@]+"${ssh_extra[@]}"})
[ -z "$identity" ] || ssh_opts+=(-i "$identity")
tmp=""
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  if [ "$dry_run" = 0 ] && [ -n "$tmp" ]; then step cleanup >/dev/null 2>&1 || true; fi
  ssh -p "$ssh_port" "${ssh_opts[@]}" -O exit "$host" >/dev/null 2>&1 || true
  rm -rf "$control_dir"
}
trap cleanup EXIT

# One word as a shell would read it back, quoted only when needed.
quote() {
  case "$1" in
    "" | *[!A-Za-z0-9_./:@=+,-]*) printf "'%s'" "${1//\'/\'\\\'\'}" ;;
    *) printf '%s' "$1" ;;
  esac
}

# Prints a command; runs it unless --dry-run.
run() {
  local word line="+"
  for word in "$@"; do line+=" $(quote "$word")"; done
  printf '%s\n' "$line"
  [ "$dry_run" = 1 ] || "$@"
}

remote() { run ssh -p "$ssh_port" "${ssh_opts[@]}" "$host" "$@"; }

# The machine a binary is built for, from its header: x86_64, aarch64, macos, or other (a script).
binary_arch() {
  case "$(od -An -tx1 -N4 "$1" 2>/dev/null | tr -d ' \n')" in
    7f454c46) ;;
    cffaedfe | cefaedfe | cafebabe) echo macos; return ;;
    *) echo other; return ;;
  esac
  case "$(od -An -tx1 -j18 -N2 "$1" 2>/dev/null | tr -d ' \n')" in
    3e00) echo x86_64 ;;
    b700) echo aarch64 ;;
    *) echo other ;;
  esac
}

# --- 1. the binary and its version -------------------------------------------
if [ -z "$binary" ]; then
  binary="$repo/dist/sluice"
  if [ -n "${DENO:-}" ]; then
    read -r -a deno_cmd <<<"$DENO"
  elif command -v deno >/dev/null 2>&1; then
    deno_cmd=(deno)
  else
    deno_cmd=(npx -y deno@2.9.6)
  fi
  log "building $binary"
  (cd "$repo" && run "${deno_cmd[@]}" task build)
fi

# "sluice 0.1.0 (commit 1a2b3c4d5e6f+dirty, built ...)" -> 0.1.0 and 1a2b3c4d5e6f+dirty
version_line=""
if [ -x "$binary" ]; then
  version_line="$("$binary" --version 2>/dev/null | head -n 1)" || version_line=""
elif [ "$dry_run" = 0 ]; then
  die "$binary is not an executable file"
fi
if [[ "$version_line" =~ ^sluice\ ([^ ]+)\ \(commit\ ([^,\)]+) ]]; then
  version="${BASH_REMATCH[1]}"
  commit="${BASH_REMATCH[2]}"
else
  # Not runnable here (another architecture) or a dry run before the build.
  version="$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$repo/package.json" | head -n 1)"
  commit="$(git -C "$repo" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
fi
suffix=""
if [[ "$commit" == *dirty* ]] && [ -f "$binary" ]; then
  # Two builds of a dirty tree share a commit: tell them apart by content.
  if command -v sha256sum >/dev/null 2>&1; then
    suffix="-$(sha256sum "$binary" | cut -c1-8)"
  else
    suffix="-$(shasum -a 256 "$binary" | cut -c1-8)"
  fi
fi
name="sluice-${version}-${commit}${suffix}"
name="${name//[^A-Za-z0-9._-]/-}"
log "deploying $name to $host${root:+ (root $root)}"

# --- 2. copy, install, restart, verify ----------------------------------------
remote_script="$repo/scripts/deploy_remote.sh"

sudo=""
# Runs one step of scripts/deploy_remote.sh on HOST, as root.
step() {
  local cmd="${sudo}bash" word
  for word in "$tmp/deploy_remote.sh" "$1" "$root" "$name" "$tmp" "$keep" "$health_timeout" \
    "$systemctl_cmd"; do
    cmd+=" $(quote "$word")"
  done
  remote "$cmd" </dev/null
}

if [ "$dry_run" = 1 ]; then
  tmp="/tmp/sluice-deploy.XXXXXX"
  remote 'id -u; mktemp -d /tmp/sluice-deploy.XXXXXX; uname -m'
  log "dry run: assuming the ssh user is root (otherwise every step below runs under sudo -n)"
else
  printf '+ ssh ... %s %s\n' "$(quote "$host")" "'id -u; mktemp -d /tmp/sluice-deploy.XXXXXX; uname -m'"
  answer="$(ssh -p "$ssh_port" "${ssh_opts[@]}" "$host" 'id -u; mktemp -d /tmp/sluice-deploy.XXXXXX; uname -m' \
    </dev/null)" || die "cannot reach $host over ssh"
  uid="$(printf '%s\n' "$answer" | sed -n 1p)"
  tmp="$(printf '%s\n' "$answer" | sed -n 2p)"
  [[ "$tmp" == /tmp/sluice-deploy.* ]] || die "could not create a temporary directory on $host"
  [ "$uid" = 0 ] || sudo="sudo -n "
  # A binary for another machine would only fail at its first start, after the switch.
  host_arch="$(printf '%s\n' "$answer" | sed -n 3p)"
  bin_arch="$(binary_arch "$binary")"
  case "$bin_arch" in
    x86_64 | aarch64)
      [ "$bin_arch" = "$host_arch" ] || die "$binary is built for $bin_arch but $host is $host_arch:" \
        "build for it with: deno task build --target linux-${host_arch/x86_64/x64}" ;;
    macos) die "$binary is a macOS binary; build for $host ($host_arch) with:" \
      "deno task build --target linux-${host_arch/x86_64/x64}" ;;
  esac
fi

log "copying the binary, unit, env example and install steps"
run scp -q -P "$ssh_port" "${ssh_opts[@]}" "$binary" "$host:$tmp/sluice"
run scp -q -P "$ssh_port" "${ssh_opts[@]}" "$repo/systemd/sluice.service" \
  "$repo/systemd/sluice.env.example" "$remote_script" "$host:$tmp/"

log "installing $name, daemon-reload, enable, restart"
install_status=0
step install || install_status=$?
if [ "$install_status" = 10 ]; then
  log "installed $name but did not start it: $root/etc/sluice/sluice.env was new."
  log "edit it on $host (SQS_QUEUE_URL, ENRICH_URL, VALIDATOR_URL at least), then run deploy.sh again"
  exit 0
fi
if [ "$install_status" = 0 ]; then
  log "polling /readyz for up to ${health_timeout}s"
  if step ready; then
    log "pruning old binaries (keeping $keep besides the current and previous)"
    step prune
    if [ "$dry_run" = 1 ]; then
      log "dry run: had /readyz failed, these steps would have followed:"
      step rollback
      step ready
      log "dry run: nothing was done"
    else
      log "deployed $name to $host"
    fi
    exit 0
  fi
fi

log "the new version did not become ready (see /readyz's answer above): rolling back"
if step rollback && step ready; then
  log "rolled back; the previous version is ready. Look at: journalctl -u sluice -n 100"
else
  log "rollback did not bring a ready service back. Look at: journalctl -u sluice -n 100"
fi
exit 1
