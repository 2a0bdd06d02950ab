"""A TLS front for the test moto server, for the test of the engine's HTTPS stack.

Makes a certificate authority and a certificate for `localhost` signed by it (writing the
authority to the file named by the first argument, for SSL_CERT_FILE), listens on a free
127.0.0.1 port, prints it, and relays each connection, decrypted, to moto at the port given
as the second argument. It exits when its stdin closes, as the moto server does.
"""

import datetime
import socket
import socketserver
import ssl
import sys
import tempfile
import threading

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def certificate(subject, issuer, key, signer, *, authority):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=authority, path_length=None), critical=True)
    )
    if not authority:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False)
    return builder.sign(signer, hashes.SHA256())


def pem(value):
    if isinstance(value, x509.Certificate):
        return value.public_bytes(serialization.Encoding.PEM)
    return value.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def context(authority_file):
    authority_key = ec.generate_private_key(ec.SECP256R1())
    authority = certificate("runbook test authority", "runbook test authority", authority_key, authority_key, authority=True)
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = certificate("localhost", "runbook test authority", key, authority_key, authority=False)
    with open(authority_file, "wb") as out:
        out.write(pem(authority))
    with tempfile.NamedTemporaryFile(suffix=".pem") as chain:
        chain.write(pem(leaf) + pem(key))
        chain.flush()
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(chain.name)
    return tls


def pipe(source, target):
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, target):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def main():
    tls = context(sys.argv[1])
    moto_port = int(sys.argv[2])

    class Relay(socketserver.BaseRequestHandler):
        def handle(self):
            try:
                client = tls.wrap_socket(self.request, server_side=True)
            except (ssl.SSLError, OSError):
                # A client that refused the certificate: the test that expects it reads the
                # engine's error, not this one.
                return
            upstream = socket.create_connection(("127.0.0.1", moto_port))
            back = threading.Thread(target=pipe, args=(upstream, client), daemon=True)
            back.start()
            pipe(client, upstream)
            back.join()

    socketserver.ThreadingTCPServer.daemon_threads = True
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Relay)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(server.server_address[1], flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    main()
