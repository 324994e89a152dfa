"""A Vault provider for the Kubernetes Secrets Store CSI driver.

One package per layer; imports only point down (checked by import-linter in `make test`):

    cli                  the command line: serve, or a tool
    serve | tools        the process (socket, servicer, health, metrics, audit, HMAC key,
                         Kubernetes) | lint, lint --vault, the driver-side client
    mount                one Mount: plan, pod tokens, kept leases, files and versions
    vault                talking to Vault: target, transport, client, session, token endpoints
    request              pure: the driver's request and the SecretProviderClass → MountConfig
    render               pure: Go JSON, a Vault answer → bytes, templates, versions, file paths
    errors | settings    the one exception tree | flags and environment → Settings

`request` and `render` do no I/O. `v1alpha1` (generated) is imported only by the driver-side
client; the server reads and writes the same messages itself (`serve.messages`).
"""

__version__ = "0.1.0"
PROVIDER_NAME = "vault-csi-provider"
