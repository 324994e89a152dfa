"""A Vault provider for the Kubernetes Secrets Store CSI driver."""

__version__ = "0.1.0"
PROVIDER_NAME = "vault-csi-provider"
