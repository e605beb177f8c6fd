{{- define "addonstack.name" -}}addonstack-operator{{- end -}}
{{- define "addonstack.labels" -}}
app.kubernetes.io/name: {{ include "addonstack.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: addonstack
{{- end -}}
{{/* kopf peering objects: one, or one per shard (<name>-<index>, as controller/settings.py names them). */}}
{{- define "addonstack.peerings" -}}
{{- $n := int .Values.shards.count -}}
{{- if gt $n 1 -}}
{{- $out := list -}}
{{- range $i := until $n }}{{ $out = append $out (printf "%s-%d" $.Values.peering.name $i) }}{{ end -}}
{{- toJson $out -}}
{{- else -}}
{{- list .Values.peering.name | toJson -}}
{{- end -}}
{{- end -}}
{{- define "addonstack.selector" -}}
app.kubernetes.io/name: {{ include "addonstack.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{/* The rules the operator needs in a namespace it manages: exactly what reconcile and finalize call, and the
watches (controller/watch.py) that re-evaluate a stack when one of its children changes. */}}
{{- define "addonstack.rules" -}}
- apiGroups: [addonstack.dev]
  resources: [addonstacks]
  verbs: [get, list, watch, patch, create]
- apiGroups: [addonstack.dev]
  resources: [addonstacks/status]
  verbs: [get, patch]
# Backups and restores (a restore may create its target stack: the clone; an upgrade creates its
# pre-upgrade backup).
- apiGroups: [addonstack.dev]
  resources: [addonstackbackups]
  verbs: [get, list, watch, create, patch]
- apiGroups: [addonstack.dev]
  resources: [addonstackrestores]
  verbs: [get, list, watch, patch]
- apiGroups: [addonstack.dev]
  resources: [addonstackbackups/status, addonstackrestores/status]
  verbs: [get, patch]
- apiGroups: [""]
  resources: [secrets, configmaps, services, persistentvolumeclaims]
  verbs: [get, list, watch, create, patch, delete]
# Pods are only read: their container states carry the reasons (image pull, crash loop, OOM, unschedulable).
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
# The namespace itself, read for its pod-security.kubernetes.io/enforce label (services the level refuses are
# skipped with reason pod_security). A Role grants this for its own namespace only.
- apiGroups: [""]
  resources: [namespaces]
  verbs: [get]
# Events on the AddonStack (core/v1; best effort, so a missing grant would only show as absent events).
- apiGroups: [""]
  resources: [events]
  verbs: [create]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [get, list, create, patch, delete]
- apiGroups: [apps]
  resources: [deployments, statefulsets]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [batch]
  resources: [jobs, cronjobs]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [networking.k8s.io]
  resources: [ingresses]
  verbs: [get, list, create, patch, delete]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, list, watch, create, patch, delete]
# Service-name claims: one Lease per service id in each namespace (controller/claims.py).
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [get, list, create, update, delete]
# Budgets for services with more than one replica (render/kubernetes/disruption.py).
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, create, patch, delete]
# The namespace's quota and LimitRanges, only read: a stack that would not fit stalls before creating objects.
- apiGroups: [""]
  resources: [resourcequotas, limitranges]
  verbs: [list]
# Traefik StripPrefix Middlewares (ingress class traefik). Listed on every reconcile; inert without Traefik.
- apiGroups: [traefik.io]
  resources: [middlewares]
  verbs: [get, list, create, patch, delete]
{{- end -}}
