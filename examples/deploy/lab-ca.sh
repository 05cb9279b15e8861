#!/bin/sh
# A private CA for a lab, and the certificates of its hosts, with openssl:
#
#   ./lab-ca.sh DIR NAME [ADDRESS...]
#
# The first run creates the CA in DIR (ca.crt, and ca.key, mode 0600: keep
# it off the hosts). Each run then issues NAME.crt and NAME.key (mode 0600),
# signed by it: CN NAME, subject alternative names NAME and every ADDRESS
# (an IP address or a DNS name the host is reached at), usable by a server
# and by a client. For a worker, NAME is its code (WORKER_CODE): the control
# plane's mutual TLS binds the code to it. Copy ca.crt, NAME.crt and
# NAME.key to the host and give them to --tls-ca, --tls-cert, --tls-key.
# An existing NAME.crt is replaced (rotation: then SIGHUP the process, or
# let it see the change). Certificates are valid for DAYS days (default
# 825), the CA for ten years. For labs; a production fleet takes its
# certificates from its own PKI.
set -eu

die() {
    echo "lab-ca: $*" >&2
    exit 1
}

[ $# -ge 2 ] || die "usage: $0 DIR NAME [ADDRESS...]"
command -v openssl >/dev/null 2>&1 || die "openssl is required"
DIR=$1
NAME=$2
shift 2
DAYS=${DAYS:-825}
case $NAME in
    *[!A-Za-z0-9._-]* | "") die "NAME must be letters, digits, '.', '_' or '-': $NAME" ;;
esac

# The directory stays readable (certificates are public); keys are 0600.
if [ ! -d "$DIR" ]; then
    mkdir -p "$DIR"
    chmod 0755 "$DIR"
fi
umask 077
if [ ! -f "$DIR/ca.crt" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$DIR/ca.key" -out "$DIR/ca.crt" -days 3650 \
        -subj "/CN=vdi-cluster lab CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    chmod 0644 "$DIR/ca.crt"
    echo "lab-ca: created the CA $DIR/ca.crt (its key $DIR/ca.key stays here)"
fi

SAN="DNS:$NAME"
for address in "$@"; do
    case $address in
        *[!0-9.]*) case $address in
            *:*) SAN="$SAN,IP:$address" ;;
            *) SAN="$SAN,DNS:$address" ;;
        esac ;;
        *) SAN="$SAN,IP:$address" ;;
    esac
done

EXT=$(mktemp)
CSR=$(mktemp)
trap 'rm -f "$EXT" "$CSR"' EXIT
cat >"$EXT" <<EXTENSIONS
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=$SAN
EXTENSIONS
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$DIR/$NAME.key.new" -out "$CSR" -subj "/CN=$NAME" 2>/dev/null
openssl x509 -req -in "$CSR" -CA "$DIR/ca.crt" -CAkey "$DIR/ca.key" \
    -CAcreateserial -days "$DAYS" -sha256 -extfile "$EXT" \
    -out "$DIR/$NAME.crt.new" 2>/dev/null
# The key first, then the certificate: a reload between the two renames
# finds a pair that does not fit and keeps the previous one.
mv "$DIR/$NAME.key.new" "$DIR/$NAME.key"
chmod 0644 "$DIR/$NAME.crt.new"
mv "$DIR/$NAME.crt.new" "$DIR/$NAME.crt"
echo "lab-ca: issued $DIR/$NAME.crt for $SAN"
