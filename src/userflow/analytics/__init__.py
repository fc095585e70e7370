"""The analytics layer: one module per metric (DESIGN.md's metric definitions).

Each metric module holds a frozen parameters type, a result type and a pure
`build(params) -> Query`: one SQL statement, its bound parameters and the pure
function that shapes its rows into the result. Running a query is `query.run`'s
job, so the query API, the dashboards' tests and the MCP server call the same
functions. Every statement reads the `tenant` schema, scoped to a read key
(`scope.py`).
"""
