"""Commands beside serving: `lint` (and its `--vault` dry run) and `driver/`, the CSI driver's side.

`driver/` builds `attributes` as the driver does, checks paths and writes files like it,
and calls a provider over its socket; `vault-csi-provider mount`, the tests and the
benchmarks use it. May import mount, vault, request, render, errors and settings (and
`driver/client` the generated `v1alpha1`); never serve.
"""
