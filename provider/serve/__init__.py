"""The provider process: the only place long-lived objects are built (`composition`), and the gRPC face.

Lives here: the socket and its hand-over (`server`), the process and signals
(`process`), the servicer with the one error → gRPC code table (`servicer`), health and
metrics over HTTP (`health`, `metrics`), logs, the audit sink, the HMAC key source and
the few Kubernetes calls (`kube`). May import every layer below: mount, vault, request,
render, and the top-level errors and settings. Not the generated `v1alpha1` nor protobuf's
runtime: the socket's messages are encoded here (`messages`, `protobuf_wire`).
"""
