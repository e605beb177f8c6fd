"""The operator: kopf handlers around one reconcile function. The only layer that talks to a cluster."""
