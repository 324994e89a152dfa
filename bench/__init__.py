"""Benchmark harness for Secrets Store CSI providers: `python -m bench` (not part of the tests).

Starts a real OpenBao with a file audit device, the TokenReview stand-in and PostgreSQL,
puts a timing proxy between the provider and OpenBao, starts the provider under test
from a command line, and drives Mounts over its unix socket exactly as the driver does.

Modules, each importing only those listed before it:

    options, stats, audit, procfs, layout   pure: settings, statistics, audit-log counting,
                                            /proc readings, what goes into Vault
    proxy, provider_process, backends,      I/O: the timing proxy, the provider process,
    kube_kit, workload                      OpenBao/PostgreSQL, the provider's own apiserver,
                                            pods and Mounts
    measure                                 one scenario window -> ScenarioResult
    scenarios                               a, b, c, d
    report                                  tables and JSON
    run, cli                                composition and flags

`python -m bench.soak` (load and soak) and `python -m bench.scale` (N nodes x M pods against
one OpenBao; its own modules `scale_*`, see `bench/scale.py`) are separate entry points.
"""
