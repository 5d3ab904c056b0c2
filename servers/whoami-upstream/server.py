#!/usr/bin/env python3
"""A small stdio MCP server (Python standard library only) that acts as one person upstream.

It exists to show a server that needs each person's own upstream account (a "connection", issue 17): the
bridge gives this person's process their upstream access token in UPSTREAM_ACCESS_TOKEN (or a file named
by UPSTREAM_ACCESS_TOKEN_FILE), and the `whoami` tool asks the upstream's userinfo endpoint
(WHOAMI_UPSTREAM_USERINFO_URL) who that token belongs to. It never prints the token.

Tools: whoami (read-only).
"""

import json
import os
import sys
import urllib.error
import urllib.request

PROTOCOL_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05")
SERVER_INFO = {"name": "hatago-whoami-upstream", "version": "1.0.0"}
USERINFO_TIMEOUT_SECONDS = 10

TOOLS = [
    {
        "name": "whoami",
        "title": "Who am I upstream",
        "description": "Asks the upstream service whose account this server acts with.",
        "inputSchema": {"type": "object", "properties": {}, "additionalProperties": False},
        "annotations": {"readOnlyHint": True, "openWorldHint": True},
    },
]


def text_result(text, is_error=False):
    result = {"content": [{"type": "text", "text": text}]}
    if is_error:
        result["isError"] = True
    return result


def access_token():
    path = os.environ.get("UPSTREAM_ACCESS_TOKEN_FILE")
    if path:
        try:
            with open(path, "r", encoding="utf-8") as handle:
                return handle.read().strip() or None
        except OSError:
            return None
    return os.environ.get("UPSTREAM_ACCESS_TOKEN") or None


def whoami():
    token = access_token()
    if token is None:
        return text_result("this process has no upstream token", True)
    url = os.environ.get("WHOAMI_UPSTREAM_USERINFO_URL")
    if not url:
        return text_result("WHOAMI_UPSTREAM_USERINFO_URL is not set", True)
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=USERINFO_TIMEOUT_SECONDS) as response:
            body = json.loads(response.read(65536).decode("utf-8"))
    except urllib.error.HTTPError as error:
        return text_result(f"the upstream refused the token (HTTP {error.code})", True)
    except (urllib.error.URLError, OSError, ValueError) as error:
        return text_result(f"the upstream could not be reached: {error}", True)
    login = body.get("login") or body.get("preferred_username") or body.get("sub") if isinstance(body, dict) else None
    return text_result(f"upstream account: {login}")


def handle(message):
    method = message.get("method")
    msg_id = message.get("id")
    if msg_id is None:
        return None
    params = message.get("params") or {}
    if method == "initialize":
        requested = params.get("protocolVersion") if isinstance(params, dict) else None
        version = requested if requested in PROTOCOL_VERSIONS else PROTOCOL_VERSIONS[0]
        result = {"protocolVersion": version, "capabilities": {"tools": {}}, "serverInfo": SERVER_INFO}
        return {"jsonrpc": "2.0", "id": msg_id, "result": result}
    if method == "ping":
        return {"jsonrpc": "2.0", "id": msg_id, "result": {}}
    if method == "tools/list":
        return {"jsonrpc": "2.0", "id": msg_id, "result": {"tools": TOOLS}}
    if method == "tools/call" and isinstance(params, dict):
        if params.get("name") != "whoami":
            return {"jsonrpc": "2.0", "id": msg_id, "error": {"code": -32602, "message": "unknown tool"}}
        return {"jsonrpc": "2.0", "id": msg_id, "result": whoami()}
    return {"jsonrpc": "2.0", "id": msg_id, "error": {"code": -32601, "message": f"method not found: {method}"}}


def main():
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            message = json.loads(line)
        except (ValueError, RecursionError):
            response = {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "parse error"}}
        else:
            response = handle(message) if isinstance(message, dict) else None
        if response is not None:
            sys.stdout.write(json.dumps(response) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
