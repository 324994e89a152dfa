"""What the serving provider loads: each library it does without is memory on every node.

`import grpc` alone holds 22 MiB; requests 4-5 MiB; h2 1.6 MiB beside the hpack it brings.
The serving path (cli, process, server, servicer, health) must load none of them, nor urllib3;
the `mount` tool may load grpcio.
"""

from __future__ import annotations

import json
import subprocess
import sys

SERVING = """
import json, sys
import provider.cli, provider.serve.process, provider.serve.server, provider.serve.health
loaded = {name.split(".")[0] for name in sys.modules}
print(json.dumps(sorted(loaded & {"grpc", "requests", "hvac", "urllib3", "h2"})))
"""


def test_the_serving_path_loads_no_grpcio_requests_hvac_urllib3_or_h2() -> None:
    found = subprocess.run([sys.executable, "-c", SERVING], capture_output=True, text=True, check=True)
    assert json.loads(found.stdout) == []


def test_the_check_sees_grpcio_when_it_is_loaded() -> None:
    """The same check on the driver client tool, which does use grpcio: the probe can fail."""
    tool = SERVING.replace("provider.serve.health", "provider.serve.health, provider.tools.driver.client")
    found = subprocess.run([sys.executable, "-c", tool], capture_output=True, text=True, check=True)
    assert json.loads(found.stdout) == ["grpc"]
