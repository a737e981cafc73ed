#!/bin/sh
# One-shot: wait for MinIO and create the bucket the worker keeps batch data in. Runs inside
# minio/mc (see docker-compose.yml). Safe to re-run: an existing bucket is left as it is.
set -eu

: "${S3_ENDPOINT:=http://minio:9000}"
: "${BUCKET:=maritaca-batch}"
: "${MINIO_ROOT_USER:?set MINIO_ROOT_USER}"
: "${MINIO_ROOT_PASSWORD:?set MINIO_ROOT_PASSWORD}"

log() { echo "[create-bucket] $*"; }

# `mc alias set` asks the server for its API version, so it fails until MinIO answers; the
# healthcheck already waited for it, this only covers a restart in between.
attempt=0
until mc alias set store "$S3_ENDPOINT" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null 2>&1; do
  attempt=$((attempt + 1))
  if [ "$attempt" -ge 60 ]; then
    log "MinIO at $S3_ENDPOINT is still unreachable, giving up"
    mc alias set store "$S3_ENDPOINT" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" || true
    exit 1
  fi
  log "waiting for MinIO at $S3_ENDPOINT ($attempt)"
  sleep 2
done

mc mb --ignore-existing "store/$BUCKET"
log "bucket $BUCKET is ready"
