"""The Company operator (kopf): each `Company` resource becomes a tenant.

A Company `NAMESPACE/NAME` (userflow.io/v1alpha1) maps to the company row whose
slug is NAME: the slug names the tenant's topic (`userflow.events.NAME`), so it
is one per cluster; the row remembers its owner ("NAMESPACE/NAME", column
k8s_owner), and a Company of the same name in another namespace is refused
rather than given the first one's tenant. The pieces:

- spec.py      the desired state, read from the resource (tier defaults, checks)
- topic.py     the dedicated tenant's Strimzi KafkaTopic: manifest and plan
- keys.py      the write and read key: plan (keep, create, rotate, repair) and apply
- status.py    conditions and the status patch
- kube.py      the few Kubernetes API calls, their errors made typed
- converge.py  converge() and finalize(): the whole reconciliation, no kopf in it
- handlers.py  the kopf registry: short handlers that call converge()/finalize()
- run.py       `userflow operator`
"""
