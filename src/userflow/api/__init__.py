"""The query API: the analytics layer over HTTP, authenticated with a tenant's read key."""
