"""Pure: the driver's Mount request and the SecretProviderClass → a frozen `MountConfig`.

`mount_request` (attributes, secrets, permission), `objects` and `object_fields` (the
objects YAML), `template_plan` (a template's reads planned), `vault_request` (the request
type every layer sends), `yamldoc` and `yaml_scalars` (YAML as Go's yaml.v3 reads it),
`jwt_claims`. May import render, errors, settings (`go_syntax`), pyyaml and the standard
library; no I/O, no clock, no threads.
"""
