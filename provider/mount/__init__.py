"""One Mount, end to end: which Vault (`target_policy`), the pod's token (`pod_tokens`,
`token_cache`), the plan (`plan`), kept dynamic secrets (`leases`), each object's files
(`object_files`) and the orchestration (`mounter`).

May import vault, request, render, errors and settings. Knows nothing of gRPC, HTTP
serving or Prometheus: what it counts goes through the `counters` protocol.
"""
