#!/bin/sh
# The entry point of a catalogue package image: the entry's secrets (a file the
# mcp_services role mounts, NAME='value' lines) become the server's environment, then the
# bridge starts the stdio server (`mcp-server`) once per MCP session and serves it over
# streamable HTTP. Its arguments come from compose.yml (mcpgw.catalogue.package_bridge_command).
set -eu
secrets=/run/secrets/mcp-package.env
if [ -f "$secrets" ]; then
  set -a
  . "$secrets"
  set +a
fi
exec node /opt/mcp-bridge/node_modules/supergateway/dist/index.js "$@"
