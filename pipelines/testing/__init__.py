"""Test and demo helpers: a local, file-backed Hugging Face Hub (`HubServer`) and `hub_client_env`."""

from pipelines.testing.hub_server import HubServer, hub_client_env

__all__ = ["HubServer", "hub_client_env"]
