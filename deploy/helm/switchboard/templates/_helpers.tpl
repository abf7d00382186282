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
# backend.service: its cluster IP, or (headless) the pods it selects.
- apiGroups: [""]
  resources: ["services"]
  verbs: ["list", "watch"]
{{- end }}
# A box's address is its Ready pod's IP; readiness decides running/stopped.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch"]
{{- if or .Values.kubernetes.readSecrets (eq .Values.kubernetes.mode "sealos-devbox") }}
# The keys: identities and authorized keys live in Secrets. RBAC cannot
# narrow a list by label, but the gateway lists and watches only Secrets
# labelled {{ dig "sources" "kubernetes" "secret_selector" "switchboard.dev/route-secret=true" (.Values.config | default dict) }}
# (sealos-devbox: app.kubernetes.io/part-of=devbox); nothing from them is logged.
# (kubernetes.readSecrets: false drops this: no Secret is read through the API.)
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["list", "watch"]
{{- end }}
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

{{/* Namespaces the gateway watches: none when cluster-wide, else the listed
     ones, else the release's own. */}}
{{- define "switchboard.namespaces" -}}
{{- if .Values.kubernetes.clusterWide -}}
{{- list | toJson -}}
{{- else if .Values.kubernetes.namespaces -}}
{{- .Values.kubernetes.namespaces | toJson -}}
{{- else -}}
{{- list .Release.Namespace | toJson -}}
{{- end -}}
{{- end -}}

{{/* The whole configuration as a map: .Values.config with the keys the chart
     owns set over it. */}}
{{- define "switchboard.config" -}}
{{- $cfg := deepCopy (.Values.config | default dict) -}}
{{- $owned := dict
  "server" (dict
    "listen" "0.0.0.0:2233"
    "host_key_seed_file" "/etc/switchboard/seed/seed"
    "shutdown_grace" (printf "%ds" (int .Values.shutdownGraceSeconds))
    "accept_after_unready" (printf "%ds" (int .Values.acceptAfterUnreadySeconds)))
  "sources" (dict
    "file" (dict "path" "/etc/switchboard/config/routes.toml" "watch" true)
    "kubernetes" (dict
      "enabled" true
      "mode" .Values.kubernetes.mode
      "namespaces" (include "switchboard.namespaces" . | fromJsonArray)
      "write_status" .Values.kubernetes.writeStatus
      "wake" .Values.kubernetes.wake
      "read_secrets" .Values.kubernetes.readSecrets))
  "admin" (dict "listen" (printf "0.0.0.0:%d" (int .Values.adminPort)))
-}}
{{- with .Values.hostIdentity.secretName -}}
{{- $keys := list -}}
{{- range $.Values.hostIdentity.extraHostKeys -}}
{{- $keys = append $keys (printf "/etc/switchboard/host-identity/%s" .) -}}
{{- end -}}
{{- $certs := list -}}
{{- range $.Values.hostIdentity.certificates -}}
{{- $certs = append $certs (printf "/etc/switchboard/host-identity/%s" .) -}}
{{- end -}}
{{- $_ := set $owned.server "extra_host_keys" $keys -}}
{{- $_ := set $owned.server "host_certificates" $certs -}}
{{- end -}}
{{- if .Values.userCA.secretName -}}
{{- $_ := set $owned "upstream" (dict "user_ca_key_file" (printf "/etc/switchboard/user-ca/%s" .Values.userCA.key)) -}}
{{- end -}}
{{- if and (not .Values.kubernetes.readSecrets) (eq .Values.kubernetes.mode "sealos-devbox") -}}
{{- fail "kubernetes.readSecrets: false does not work with mode sealos-devbox, which finds its boxes through their Secrets" -}}
{{- end -}}
{{- if .Values.proxyProtocol.enabled -}}
{{- $_ := set $owned "proxy_protocol" (dict "enabled" true "trusted_cidrs" .Values.proxyProtocol.trustedCidrs) -}}
{{- end -}}
{{- mustMergeOverwrite $cfg $owned | toJson -}}
{{- end -}}

{{/* A map as TOML: its scalars under [path], then each sub-map as a table.
     Numbers that are whole print as integers (Helm reads every YAML number
     as a float). Args: dict "table" MAP "path" "a.b". */}}
{{- define "switchboard.toml" -}}
{{- $scalars := list -}}
{{- $tables := list -}}
{{- range $k, $v := .table -}}
{{- if kindIs "map" $v -}}{{- $tables = append $tables $k -}}{{- else -}}{{- $scalars = append $scalars $k -}}{{- end -}}
{{- end -}}
{{- if and .path $scalars }}
[{{ .path }}]
{{- end -}}
{{- range $k := $scalars }}
{{ $k }} = {{ include "switchboard.tomlValue" (index $.table $k) }}
{{- end -}}
{{- range $k := $tables -}}
{{- $path := $k -}}
{{- if $.path -}}{{- $path = printf "%s.%s" $.path $k -}}{{- end -}}
{{- include "switchboard.toml" (dict "table" (index $.table $k) "path" $path) -}}
{{- end -}}
{{- end -}}

{{- define "switchboard.tomlValue" -}}
{{- if kindIs "slice" . -}}
[{{ range $i, $x := . }}{{ if $i }}, {{ end }}{{ include "switchboard.tomlValue" $x }}{{ end }}]
{{- else if kindIs "float64" . -}}
{{- if eq (float64 (int64 .)) . -}}{{ int64 . }}{{- else -}}{{ . }}{{- end -}}
{{- else if kindIs "string" . -}}
{{- toJson . -}}
{{- else if kindIs "map" . -}}
{{- fail "config: a table inside a list is not supported" -}}
{{- else -}}
{{- . -}}
{{- end -}}
{{- end -}}

{{/* Memory limit in MiB (Mi or Gi quantities), 0 when unset or other. */}}
{{- define "switchboard.memoryMiB" -}}
{{- $m := toString (dig "limits" "memory" "" (.Values.resources | default dict)) -}}
{{- if hasSuffix "Gi" $m -}}{{ mul (trimSuffix "Gi" $m | atoi) 1024 }}
{{- else if hasSuffix "Mi" $m -}}{{ trimSuffix "Mi" $m | atoi }}
{{- else -}}0{{- end -}}
{{- end -}}

{{/* Refuses a max_connections the memory limit cannot hold: 64 MiB base plus
     128 KiB per connection (README, "Sizing"). */}}
{{- define "switchboard.checkSizing" -}}
{{- $mib := include "switchboard.memoryMiB" . | atoi -}}
{{- $max := dig "server" "max_connections" 10000 (.Values.config | default dict) | int -}}
{{- if gt $mib 0 -}}
{{- $fits := div (mul (sub $mib 64) 1024) 128 -}}
{{- if gt $max (int $fits) -}}
{{- fail (printf "config.server.max_connections (%d) does not fit resources.limits.memory (%dMi): at ~128 KiB per session plus 64 MiB it holds %d; raise the limit or lower max_connections" $max $mib $fits) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Box ports for the NetworkPolicy's egress. */}}
{{- define "switchboard.boxPorts" -}}
{{- if .Values.networkPolicy.boxPorts -}}
{{- .Values.networkPolicy.boxPorts | toJson -}}
{{- else if eq .Values.kubernetes.mode "sealos-devbox" -}}
{{- list (dig "sources" "kubernetes" "devbox_port" 22 (.Values.config | default dict)) | toJson -}}
{{- else -}}
{{- dig "sources" "kubernetes" "backend_ports" (list 22 2222) (.Values.config | default dict) | toJson -}}
{{- end -}}
{{- end -}}
