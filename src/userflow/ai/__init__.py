"""The AI analyst: the tools (tools.py) over one tenant's data (reader.py), the MCP server.

Tools are the analytics functions (DESIGN invariant 6); the MCP server and the
report are thin shells over them.
"""
