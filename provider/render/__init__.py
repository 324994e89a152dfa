"""Pure: values as the upstream provider writes them.

Go's JSON (`gojson`), a Vault answer → bytes (`extract`: keys, envelope, encodings), the
Vault Agent template engine (`templates/`), object versions (`version_hmac`) and the file
paths the driver accepts (`file_paths`). The bottom layer: imports only errors, pyyaml
(templates' toYAML) and the standard library; no I/O, no clock, no threads.
"""
