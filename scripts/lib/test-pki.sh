#!/usr/bin/env bash
# Makes a throwaway CA and a server certificate for localhost / 127.0.0.1 in
# DIR (ca.pem, ca.key, server.pem, server.key), for the TLS checks and
# benchmarks. Needs openssl (installed by the scripts that call this).
#
#   scripts/lib/test-pki.sh DIR
set -euo pipefail
cd "$1"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -keyout ca.key -out ca.pem \
  -subj "/CN=segcore test CA" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr \
  -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > san.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 \
  -out server.pem -extfile san.ext 2>/dev/null
