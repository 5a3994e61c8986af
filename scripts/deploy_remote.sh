#!/usr/bin/env bash
# The part of deploy.sh that runs on the target host, one step per call:
#   bash deploy_remote.sh STEP ROOT NAME TMP KEEP TIMEOUT SYSTEMCTL
# STEP is install, ready, rollback, prune or cleanup; TMP holds the uploaded
# sluice, sluice.service and sluice.env.example. Runs as root. install exits 10
# when it had to create sluice.env from the example: installed, not started.
# install keeps the unit it replaces in TMP, so rollback restores the unit
# together with the binary.
set -euo pipefail
step="$1" root="$2" name="$3" tmp="$4" keep="$5" timeout="$6"
read -r -a systemctl <<<"$7"
lib="$root/usr/local/lib/sluice"
link="$root/usr/local/bin/sluice"
envfile="$root/etc/sluice/sluice.env"
unit="$root/etc/systemd/system/sluice.service"

switch_to() { # atomic: a new symlink renamed over the old one
  ln -sfn "../lib/sluice/$1" "$link.new"
  mv -T "$link.new" "$link"
}

# /readyz, not /healthz: /healthz is 200 as soon as the process runs, even when it
# cannot reach SQS (no credentials, no permission); /readyz is 200 only once it can.
ready_url() {
  local port host
  port="$(sed -n 's/^[[:space:]]*HTTP_PORT=["'\'']\{0,1\}\([0-9]*\).*/\1/p' "$envfile" 2>/dev/null | tail -n 1)"
  host="$(sed -n 's/^[[:space:]]*HTTP_HOST=["'\'']\{0,1\}\([^"'\''[:space:]]*\).*/\1/p' "$envfile" 2>/dev/null | tail -n 1)"
  case "$host" in "" | 0.0.0.0 | "::" | "[::]") host=127.0.0.1 ;; *:*) host="[$host]" ;; esac
  echo "http://$host:${port:-9400}/readyz"
}

# SLUICE_IP_ALLOW in the env file widens the unit's IPAddressAllow= through a drop-in (systemd
# reads no variable there): e.g. "any" for SQS on its public endpoint, or the VPC endpoint's range.
ip_allow() {
  local value dropin="$root/etc/systemd/system/sluice.service.d/50-ip-allow.conf"
  value="$(sed -n 's/^[[:space:]]*SLUICE_IP_ALLOW=["'\'']\{0,1\}\([^"'\'']*\).*/\1/p' "$envfile" 2>/dev/null | tail -n 1)"
  if [ -z "$value" ]; then
    rm -f "$dropin"
    return 0
  fi
  if ! [[ "$value" =~ ^[A-Za-z0-9.:/\ -]+$ ]]; then
    echo "SLUICE_IP_ALLOW=$value: expected addresses, prefixes or any, separated by spaces" >&2
    return 1
  fi
  mkdir -p "${dropin%/*}"
  printf '# From SLUICE_IP_ALLOW in %s (deploy.sh writes it).\n[Service]\nIPAddressAllow=%s\n' \
    "${envfile#"$root"}" "$value" >"$dropin"
  echo "IPAddressAllow widened by $dropin: $value"
}

case "$step" in
  install)
    mkdir -p "$lib" "$root/usr/local/bin" "$root/etc/sluice" "$root/etc/systemd/system"
    chmod 0700 "$root/etc/sluice"
    install -m 0755 "$tmp/sluice" "$lib/.$name.tmp"
    mv -f "$lib/.$name.tmp" "$lib/$name"
    # The unit being replaced, for rollback.
    if [ -e "$unit" ]; then cp -p "$unit" "$tmp/sluice.service.previous"; fi
    install -m 0644 "$tmp/sluice.service" "$root/etc/systemd/system/.sluice.service.tmp"
    mv -f "$root/etc/systemd/system/.sluice.service.tmp" "$unit"
    install -m 0644 "$tmp/sluice.env.example" "$root/etc/sluice/sluice.env.example"
    configured=1
    if [ -e "$envfile" ]; then
      echo "kept existing $envfile"
    else
      install -m 0600 "$tmp/sluice.env.example" "$envfile"
      echo "installed $envfile from the example"
      configured=0
    fi
    ip_allow
    previous="$(readlink "$link" 2>/dev/null || true)"
    previous="${previous##*/}"
    echo "$previous" >"$tmp/previous"
    switch_to "$name"
    echo "switched $link -> ../lib/sluice/$name (previous: ${previous:-none})"
    "${systemctl[@]}" daemon-reload
    if [ "$configured" = 0 ]; then
      # Starting on the example's placeholders would only fail: wait for the operator.
      exit 10
    fi
    "${systemctl[@]}" enable sluice.service
    "${systemctl[@]}" restart sluice.service
    ;;
  ready)
    url="$(ready_url)"
    deadline=$((SECONDS + timeout))
    while :; do
      # The body too when not ready: /readyz's 503 says why.
      if command -v curl >/dev/null 2>&1; then
        out="$(curl -sS --max-time 2 -w '\n%{http_code}' "$url" 2>&1)" || true
        code="${out##*$'\n'}"
        body="${out%$'\n'*}"
        [ "$out" != "$code" ] || body=""
      else
        body="$(wget -q -T 2 --content-on-error -O - "$url" 2>&1)" && code=200 || code=000
      fi
      if [ "$code" = 200 ]; then
        echo "readyz ok: $url -> $body"
        exit 0
      fi
      if [ "$SECONDS" -ge "$deadline" ]; then
        echo "readyz not ready after ${timeout}s: $url -> HTTP $code ${body:-(no answer)}"
        exit 1
      fi
      sleep 1
    done
    ;;
  rollback)
    if [ ! -e "$tmp/previous" ]; then
      echo "the install stopped before switching the symlink: nothing to roll back"
      exit 1
    fi
    previous="$(cat "$tmp/previous")"
    if [ -z "$previous" ] || [ "$previous" = "$name" ] || [ ! -e "$lib/$previous" ]; then
      echo "no previous binary to roll back to"
      exit 1
    fi
    switch_to "$previous"
    echo "rolled back $link -> ../lib/sluice/$previous"
    # The unit goes back with the binary: the new unit may need the new binary.
    if [ -e "$tmp/sluice.service.previous" ]; then
      install -m 0644 "$tmp/sluice.service.previous" "$root/etc/systemd/system/.sluice.service.tmp"
      mv -f "$root/etc/systemd/system/.sluice.service.tmp" "$unit"
      echo "rolled back $unit"
    fi
    "${systemctl[@]}" daemon-reload
    # A binary that died at once has used up StartLimitBurst by now, and systemd
    # refuses a restart ("Start request repeated too quickly") until this.
    "${systemctl[@]}" reset-failed sluice.service || true
    "${systemctl[@]}" restart sluice.service
    ;;
  prune)
    # Keep the current and previous binaries plus the newest $keep others.
    current="$(readlink "$link" 2>/dev/null || true)"
    previous="$(cat "$tmp/previous" 2>/dev/null || true)"
    find "$lib" -maxdepth 1 -type f -name 'sluice-*' -printf '%T@ %f\n' | sort -rn | cut -d' ' -f2- |
      while read -r file; do
        [ "$file" = "${current##*/}" ] || [ "$file" = "$previous" ] && continue
        if [ "$keep" -gt 0 ]; then keep=$((keep - 1)); continue; fi
        rm -f "$lib/$file" && echo "removed old $file"
      done
    ;;
  cleanup) rm -rf "$tmp" ;;
  *) echo "unknown step $step" >&2; exit 2 ;;
esac
