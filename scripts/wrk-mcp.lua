-- wrk script for scripts/bench-mcp: every request is one stateless MCP `tools/call list_offers`
-- (legacy era header, JSON response), as an assistant would send it after initialize.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["MCP-Protocol-Version"] = "2025-11-25"
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_offers","arguments":{"limit":25}}}'
