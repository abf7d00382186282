{{/* Name of every object of this release. */}}
{{- define "switchboard.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "switchboard.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selector labels (stable across upgrades). */}}
{{- define "switchboard.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The Secret holding the seed. */}}
{{- define "switchboard.seedSecret" -}}
{{- default (printf "%s-seed" (include "switchboard.fullname" .)) .Values.seed.existingSecret -}}
{{- end -}}

{{/* RBAC rules, each with why (SPEC §7: least privilege). */}}
{{- define "switchboard.rules" -}}
{{- if eq .Values.kubernetes.mode "crd" }}
# SSHRoute objects are the routes; list+watch keeps the cache.
- apiGroups: ["switchboard.dev"]
  resources: ["sshroutes"]
  verbs: ["list", "watch"]
{{- if .Values.kubernetes.writeStatus }}
# Write each route's Ready condition (the status subresource only).
- apiGroups: ["switchboard.dev"]
  resources: ["sshroutes/status"]
  verbs: ["patch"]
{{- end }}
# backend.service resolves to the Service's cluster IP.
- apiGroups: [""]
  resources: ["services"]
  verbs: ["list", "watch"]
{{- end }}
# A box's address is its Ready pod's IP; readiness decides running/stopped.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch"]
# The keys: identities (what the gateway logs in with) and authorized keys
# live in Secrets. Watched and cached so no login waits on the API; only the
# Secrets routes use are kept in memory; nothing from them is logged.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["list", "watch"]
{{- if .Values.kubernetes.wake }}
{{- if eq .Values.kubernetes.mode "crd" }}
# Wake on connect: read a workload's replicas and scale it from 0 to 1
# (the scale subresource only: never the workload's spec).
- apiGroups: ["apps"]
  resources: ["deployments/scale", "statefulsets/scale"]
  verbs: ["get", "patch"]
{{- else }}
# Wake on connect: merge-patch a Devbox's spec.state to Running.
- apiGroups: ["devbox.sealos.io"]
  resources: ["devboxes"]
  verbs: ["patch"]
{{- end }}
{{- end }}
{{- end -}}
