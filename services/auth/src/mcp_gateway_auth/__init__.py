"""OAuth 2.1 authorization server for MCP clients, and the gateway's ForwardAuth /verify."""

__version__ = "0.1.0"
