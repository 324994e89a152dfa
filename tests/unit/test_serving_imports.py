"""What the serving provider loads: each library it does without is memory on every node.

`import grpc` alone holds 22 MiB; requests 4-5 MiB; h2 1.6 MiB beside the hpack it brings;
protobuf's runtime with the service's descriptors 3.2 MiB. The serving path (cli, process,
server, servicer, health) must load none of them, nor urllib3; the `mount` tool may load
grpcio and protobuf. The template engine (0.8 MiB) and decimal wait for their first use.
"""

from __future__ import annotations

import json
import subprocess
import sys

SERVING = """
import json, sys
import provider.cli, provider.serve.process, provider.serve.server, provider.serve.health
loaded = {name.split(".")[0] for name in sys.modules}
print(json.dumps(sorted(loaded & {"grpc", "grpc_health", "google", "requests", "hvac", "urllib3", "h2"})))
"""


def test_the_serving_path_loads_no_grpcio_protobuf_requests_hvac_urllib3_or_h2() -> None:
    found = subprocess.run([sys.executable, "-c", SERVING], capture_output=True, text=True, check=True)
    assert json.loads(found.stdout) == []


def test_the_check_sees_grpcio_when_it_is_loaded() -> None:
    """The same check on the driver client tool, which does use grpcio: the probe can fail."""
    tool = SERVING.replace("provider.serve.health", "provider.serve.health, provider.tools.driver.client")
    found = subprocess.run([sys.executable, "-c", tool], capture_output=True, text=True, check=True)
    assert {"google", "grpc"} <= set(json.loads(found.stdout))


LAZY = """
import json, sys
import provider.cli, provider.serve.process, provider.serve.server, provider.serve.health
from provider.request.mount_request import parse_mount_request
lazy = ("provider.render.templates.engine", "decimal")
before = [name in sys.modules for name in lazy]
parse_mount_request(sys.argv[1], "null", "/target", "420", token_optional=True)
print(json.dumps([before, [name in sys.modules for name in lazy]]))
"""


def test_the_template_engine_loads_with_the_first_template() -> None:
    """Not loaded to serve; loaded, and working, when a SecretProviderClass has a template."""
    objects = "- objectName: t\n  template: '{{ with secret \"kv/app\" }}{{ .Data.a }}{{ end }}'\n"
    attributes = json.dumps(
        {
            "roleName": "app",
            "objects": objects,
            "csi.storage.k8s.io/pod.name": "p",
            "csi.storage.k8s.io/pod.namespace": "n",
            "csi.storage.k8s.io/pod.uid": "u",
            "csi.storage.k8s.io/serviceAccount.name": "s",
        }
    )
    found = subprocess.run(
        [sys.executable, "-c", LAZY, attributes], capture_output=True, text=True, check=True
    )
    assert json.loads(found.stdout) == [[False, False], [True, True]]
