#!/usr/bin/env bash
# Makes a private CA and a server certificate signed by it, for TLS between
# clients and a server node (and a client certificate, for deployments that
# also want them). The server certificate carries each NAME as a DNS name or,
# for an address literal, as an IP address: clients check it against the
# host they connect to.
#   tools/make_certs.sh DIR [NAME...]     (default names: localhost 127.0.0.1)
# Writes DIR/ca.pem (give it to every client), DIR/server.pem + server.key
# (the server's), DIR/client.pem + client.key, and DIR/ca.key (keep it
# offline: whoever holds it can mint certificates your clients trust).
set -euo pipefail
dir="${1:?usage: tools/make_certs.sh DIR [NAME...]}"
shift
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(localhost 127.0.0.1)
mkdir -p "$dir"
cd "$dir"

san=""
for n in "${names[@]}"; do
  if [[ "$n" =~ ^[0-9.]+$ || "$n" == *:* ]]; then san+="IP:$n,"; else san+="DNS:$n,"; fi
done
san=${san%,}

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
  -subj "/CN=memsync private CA" -keyout ca.key -out ca.pem \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  2>/dev/null
for who in server client; do
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj "/CN=memsync $who" -keyout "$who.key" -out "$who.csr" 2>/dev/null
  ext="basicConstraints=CA:FALSE"
  if [ "$who" = server ]; then
    ext="$ext
subjectAltName=$san
extendedKeyUsage=serverAuth"
  else
    ext="$ext
extendedKeyUsage=clientAuth"
  fi
  openssl x509 -req -in "$who.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
    -days 825 -out "$who.pem" -extfile <(printf '%s\n' "$ext") 2>/dev/null
  rm -f "$who.csr"
done
rm -f ca.srl
chmod 600 ./*.key
echo "make_certs: wrote $dir/{ca,server,client}.pem and keys; server names: ${names[*]}"
