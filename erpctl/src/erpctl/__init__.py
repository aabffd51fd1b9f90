"""erpctl: staged ERP rollouts driven through ansible-runner (see erpctl/README.md)."""

__version__ = "0.1.0"
