#!/usr/bin/env python3
"""A small stdio MCP server written with the Python standard library only: per-user notes.

It exists to prove that Hatago Auth runs servers of any runtime (here Python) through the same bridge,
policy and audit as its npm servers. It speaks MCP over stdio (newline-delimited JSON-RPC 2.0) and keeps
its notes in one JSON file in the directory named by NOTES_DIR (the process's own data directory), so
each person's notes stay with that person.

Tools: add_note (write), list_notes (read-only), and crash (for supervision tests: the process exits).
"""

import json
import os
import sys
import tempfile

PROTOCOL_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05")
SERVER_INFO = {"name": "hatago-notes", "version": "1.0.0"}
MAX_NOTE_CHARS = 10_000
MAX_NOTES = 1_000

TOOLS = [
    {
        "name": "add_note",
        "title": "Add a note",
        "description": "Stores a short note for you.",
        "inputSchema": {
            "type": "object",
            "properties": {"text": {"type": "string", "maxLength": MAX_NOTE_CHARS}},
            "required": ["text"],
            "additionalProperties": False,
        },
        "annotations": {"readOnlyHint": False, "destructiveHint": False, "idempotentHint": False, "openWorldHint": False},
    },
    {
        "name": "list_notes",
        "title": "List your notes",
        "description": "Lists the notes you stored, oldest first.",
        "inputSchema": {"type": "object", "properties": {}, "additionalProperties": False},
        "annotations": {"readOnlyHint": True, "openWorldHint": False},
    },
    {
        "name": "crash",
        "title": "Crash the server process",
        "description": "Exits the server process at once (for testing supervision).",
        "inputSchema": {"type": "object", "properties": {}, "additionalProperties": False},
        "annotations": {"readOnlyHint": False, "destructiveHint": True, "openWorldHint": False},
    },
]


def notes_file():
    directory = os.environ.get("NOTES_DIR") or "."
    return os.path.join(directory, "notes.json")


def load_notes():
    try:
        with open(notes_file(), "r", encoding="utf-8") as handle:
            notes = json.load(handle)
        return notes if isinstance(notes, list) else []
    except FileNotFoundError:
        return []


def save_notes(notes):
    # Atomic: a crash mid-write leaves the previous file, never a torn one.
    directory = os.path.dirname(notes_file()) or "."
    fd, tmp = tempfile.mkstemp(prefix=".notes-", dir=directory)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(notes, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, notes_file())


def text_result(text, is_error=False):
    result = {"content": [{"type": "text", "text": text}]}
    if is_error:
        result["isError"] = True
    return result


def call_tool(name, arguments):
    if not isinstance(arguments, dict):
        raise ValueError("arguments must be an object")
    if name == "add_note":
        text = arguments.get("text")
        if not isinstance(text, str) or not text or len(text) > MAX_NOTE_CHARS:
            return text_result(f"text must be a non-empty string of at most {MAX_NOTE_CHARS} characters", True)
        notes = load_notes()
        if len(notes) >= MAX_NOTES:
            return text_result(f"at most {MAX_NOTES} notes", True)
        notes.append(text)
        save_notes(notes)
        return text_result(f"stored note {len(notes)}")
    if name == "list_notes":
        notes = load_notes()
        return text_result("\n".join(f"{i + 1}. {note}" for i, note in enumerate(notes)) or "no notes yet")
    if name == "crash":
        sys.stdout.flush()
        os._exit(3)
    return None


def handle(message):
    """Returns the response to one request, or None for a notification."""
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
        try:
            result = call_tool(params.get("name"), params.get("arguments", {}))
        except ValueError as error:
            return {"jsonrpc": "2.0", "id": msg_id, "error": {"code": -32602, "message": str(error)}}
        if result is None:
            return {"jsonrpc": "2.0", "id": msg_id, "error": {"code": -32602, "message": "unknown tool"}}
        return {"jsonrpc": "2.0", "id": msg_id, "result": result}
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
