"""The SSLContext for a Vault target: exactly the configured CAs, a client certificate if given."""

from __future__ import annotations

import ssl
from pathlib import Path

from provider.settings import TlsSettings

__all__ = ["PEM_SUFFIXES", "build_ssl_context"]

PEM_SUFFIXES = (".pem", ".crt", ".cer")


def build_ssl_context(tls: TlsSettings) -> ssl.SSLContext:
    """An SSL context trusting exactly the configured CAs (else the system's).

    Raises OSError/ssl.SSLError for unreadable files; the caller turns those into
    messages that name the file.
    """
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if tls.skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif tls.ca_cert or tls.ca_directory:
        # create_default_context loaded the system roots; a configured CA replaces them.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if tls.ca_cert:
            context.load_verify_locations(cafile=tls.ca_cert)
        if tls.ca_directory:
            # Like Go's client: every PEM file in the directory, no hashed names needed.
            loaded = 0
            for entry in sorted(Path(tls.ca_directory).iterdir()):
                if entry.is_file() and entry.suffix.lower() in PEM_SUFFIXES:
                    context.load_verify_locations(cafile=str(entry))
                    loaded += 1
            if not loaded:
                raise ssl.SSLError(f"no PEM certificates in {tls.ca_directory}")
    if tls.client_cert:
        context.load_cert_chain(certfile=tls.client_cert, keyfile=tls.client_key or None)
    return context
