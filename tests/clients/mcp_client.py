"""Drives `infermon mcp` with the official MCP Python SDK (PyPI `mcp`) over stdio.

    python mcp_client.py INFERMON_BINARY AGENT_URL CALLS_JSON [EXTRA_MCP_ARGS...]

CALLS_JSON is a list of [label, tool, arguments]. The script starts
`INFERMON_BINARY mcp --url AGENT_URL` through the SDK's stdio client, initializes, lists the
tools, makes each call in order, and prints one JSON object on stdout:

    {"server": {...}, "tools": [{"name", "description", "inputSchema", "annotations"}],
     "calls": {label: {"is_error", "structured", "text"} | {"protocol_error": "..."}}}

A call refused at the protocol level (a JSON-RPC error) is recorded, not raised, so the test
sees it and the calls after it still run.
"""

import asyncio
import json
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError


def dump(model):
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


async def main(binary, agent_url, calls, extra=()):
    params = StdioServerParameters(command=binary, args=["mcp", "--url", agent_url, *extra])
    out = {"calls": {}}
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            out["server"] = dump(init.server_info)
            out["protocol_version"] = init.protocol_version
            listed = await session.list_tools()
            out["tools"] = [
                {
                    "name": t.name,
                    "description": t.description,
                    "inputSchema": t.input_schema,
                    "annotations": dump(t.annotations) if t.annotations else None,
                }
                for t in listed.tools
            ]
            for label, tool, arguments in calls:
                try:
                    r = await session.call_tool(tool, arguments)
                except MCPError as e:
                    out["calls"][label] = {"protocol_error": str(e)}
                    continue
                texts = [c.text for c in r.content if getattr(c, "type", None) == "text"]
                out["calls"][label] = {
                    "is_error": bool(r.is_error),
                    "structured": r.structured_content,
                    "text": "\n".join(texts),
                }
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4:]))
