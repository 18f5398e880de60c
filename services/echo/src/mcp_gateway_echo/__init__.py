"""Diagnostic MCP server of the MCP gateway."""
