"""`userflow report`: a tenant's UX report as one HTML file, from the AI analyst's tools.

The data sections come from the same tools as the MCP server (ai/tools.py),
called with fixed arguments (gather.py); with an Anthropic key, Claude drives
its own analysis over those tools and writes the narrative (narrative.py),
whose every number is traced to a tool result (trace.py). Charts are
matplotlib PNGs inlined in the page (charts.py, render.py); build.py runs the
steps behind a progress display.
"""
