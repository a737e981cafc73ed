#!/bin/sh
# One-shot: wait for the Temporal server, create the namespace and register the custom
# search attributes temporal-maritaca-batch uses. Runs inside temporalio/admin-tools (see
# docker-compose.yml). Safe to re-run: existing namespace and attributes are left as they are;
# an attribute that exists with another type is an error.
set -eu

: "${TEMPORAL_ADDRESS:=temporal:7233}"
: "${NAMESPACE:=default}"
: "${NAMESPACE_RETENTION:=72h}"
# name:type pairs, separated by spaces
: "${SEARCH_ATTRIBUTES:=MaritacaBatchStatus:Keyword MaritacaEstimatedCost:Double MaritacaActualCost:Double MaritacaRequests:Int}"

log() { echo "[namespace-setup] $*"; }

host="${TEMPORAL_ADDRESS%:*}"
port="${TEMPORAL_ADDRESS##*:}"

attempt=0
until nc -z -w 2 "$host" "$port" 2>/dev/null; do
  attempt=$((attempt + 1))
  if [ "$attempt" -ge 90 ]; then
    log "Temporal frontend at $TEMPORAL_ADDRESS is still unreachable, giving up"
    exit 1
  fi
  log "waiting for Temporal frontend at $TEMPORAL_ADDRESS ($attempt)"
  sleep 2
done

# The server listens on IPv4 (BIND_ON_IP=0.0.0.0); on Docker networks with IPv6 enabled the
# service name may resolve to an IPv6 address first, so talk to the IPv4 address directly.
address="$TEMPORAL_ADDRESS"
if command -v getent >/dev/null 2>&1; then
  ipv4="$(getent ahostsv4 "$host" 2>/dev/null | awk 'NR == 1 { print $1 }')"
  if [ -n "$ipv4" ]; then
    address="$ipv4:$port"
  fi
fi
log "using frontend address $address"

tcli() { temporal "$@" --address "$address"; }

attempt=0
until tcli operator cluster health >/dev/null 2>&1; do
  attempt=$((attempt + 1))
  if [ "$attempt" -ge 90 ]; then
    log "Temporal server did not report SERVING, giving up"
    tcli operator cluster health || true
    exit 1
  fi
  log "waiting for the Temporal server to be healthy ($attempt)"
  sleep 2
done
log "server is healthy"

if tcli operator namespace describe --namespace "$NAMESPACE" >/dev/null 2>&1; then
  log "namespace $NAMESPACE already exists"
else
  log "creating namespace $NAMESPACE (retention $NAMESPACE_RETENTION)"
  tcli operator namespace create --namespace "$NAMESPACE" --retention "$NAMESPACE_RETENTION"
fi

# Lower-cases a type name and drops an INDEXED_VALUE_TYPE_ prefix and underscores, so the
# CLI's table output ("Keyword" or "INDEXED_VALUE_TYPE_KEYWORD") compares with "Keyword".
normalize_type() {
  echo "$1" | tr '[:upper:]' '[:lower:]' | sed -e 's/^indexed_value_type_//' -e 's/_//g'
}

# Prints the registered type of search attribute $1 in the namespace, or nothing.
registered_type() {
  tcli operator search-attribute list --namespace "$NAMESPACE" 2>/dev/null |
    awk -v name="$1" '$1 == name { print $2; exit }'
}

for pair in $SEARCH_ATTRIBUTES; do
  name="${pair%%:*}"
  type="${pair#*:}"
  attempt=0
  while :; do
    current="$(registered_type "$name")"
    if [ -n "$current" ]; then
      if [ "$(normalize_type "$current")" = "$(normalize_type "$type")" ]; then
        log "search attribute $name ($type) already registered"
        break
      fi
      log "search attribute $name is registered as $current, expected $type: fix it by hand"
      exit 1
    fi
    attempt=$((attempt + 1))
    if [ "$attempt" -gt 30 ]; then
      log "could not register search attribute $name ($type), giving up"
      exit 1
    fi
    # A namespace created moments ago may not be visible to every service yet: retry.
    if tcli operator search-attribute create --namespace "$NAMESPACE" --name "$name" --type "$type"; then
      log "created search attribute $name ($type), verifying"
    else
      log "registering $name failed (attempt $attempt), retrying"
      sleep 2
    fi
  done
done

log "done"
