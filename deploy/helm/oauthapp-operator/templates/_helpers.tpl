{{- define "oauthapp-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's object names: the release name when it already says oauthapp-operator. */}}
{{- define "oauthapp-operator.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "oauthapp-operator.callbackFullname" -}}
{{- printf "%s-callback" (include "oauthapp-operator.fullname" . | trunc 54 | trimSuffix "-") -}}
{{- end -}}

{{/* Every object's labels. */}}
{{- define "oauthapp-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "oauthapp-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* The pods of both components (the NetworkPolicies select these). */}}
{{- define "oauthapp-operator.podSelectorLabels" -}}
app.kubernetes.io/name: {{ include "oauthapp-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* One component's pods: (list $ "controller") or (list $ "callback"). */}}
{{- define "oauthapp-operator.selectorLabels" -}}
{{ include "oauthapp-operator.podSelectorLabels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "oauthapp-operator.image" -}}
{{- $image := .Values.image -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $image.repository $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $image.repository (default .Chart.AppVersion $image.tag) -}}
{{- end -}}
{{- end -}}

{{/*
What the operator needs in every namespace it watches: deploy/base/clusterrole.yaml, where each
rule's comment says why (a test checks that the chart and deploy/ grant the same). Only the verbs
the code uses, no wildcards, nothing cluster-scoped.
*/}}
{{- define "oauthapp-operator.watchedNamespaceRules" -}}
# OAuthApps: the informer cache (list/watch), a live read after a callback (get), the finalizer
# (patch). The operator never writes a spec.
- apiGroups: [oauthapp.dev]
  resources: [oauthapps]
  verbs: [get, list, watch, patch]
# Conditions, token expiry and the authorization URL, through the status subresource only.
- apiGroups: [oauthapp.dev]
  resources: [oauthapps/status]
  verbs: [patch]
# blockOwnerDeletion on target Secrets where OwnerReferencesPermissionEnforcement is on (OpenShift).
- apiGroups: [oauthapp.dev]
  resources: [oauthapps/finalizers, oauthinstallations/finalizers]
  verbs: [update]
# OAuthInstallations (public apps): created by the callback, cached, the revoking finalizer
# (patch), deleted with their app.
- apiGroups: [oauthapp.dev]
  resources: [oauthinstallations]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [oauthapp.dev]
  resources: [oauthinstallations/status]
  verbs: [patch]
# Target Secrets (create/update; delete: an uninstalled installation's), referenced client-secret
# and refresh-token Secrets (watched as metadata, read by name).
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch, create, update, delete]
# An events.k8s.io Event per condition transition.
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create]
# rolloutRestartTargets: a merge patch of a pod-template annotation, nothing else.
- apiGroups: [apps]
  resources: [deployments, statefulsets, daemonsets]
  verbs: [patch]
{{- end -}}

{{/* What the callback component needs where it serves: deploy/overlays/split-callback/callback-rbac.yaml. */}}
{{- define "oauthapp-operator.callbackWatchedNamespaceRules" -}}
# Its cache of OAuthApps (list/watch: which app a state names), one live read after the exchange.
- apiGroups: [oauthapp.dev]
  resources: [oauthapps]
  verbs: [get, list, watch]
# A company's installation of a public app: found (get) or created (create), owned by the app.
- apiGroups: [oauthapp.dev]
  resources: [oauthinstallations]
  verbs: [get, create]
# The client secret for the code exchange, read by name when a callback arrives; never listed.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
{{- end -}}

{{/*
A Role and RoleBinding <name>-watch per watched namespace, or a ClusterRole and ClusterRoleBinding
<name> when all namespaces are watched: (dict "root" $ "name" … "account" … "rules" "<template name>").
*/}}
{{- define "oauthapp-operator.watchedNamespaceRBAC" -}}
{{- $args := . -}}
{{- $root := .root -}}
{{- $labels := include "oauthapp-operator.labels" $root -}}
{{- range $namespace := (default (list "") $root.Values.watchNamespaces) }}
{{- /* -watch: the release namespace may be watched too, and has a Role of the same name. */}}
{{- $name := ternary (printf "%s-watch" $args.name) $args.name (ne $namespace "") }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: {{ if $namespace }}Role{{ else }}ClusterRole{{ end }}
metadata:
  name: {{ $name }}
  {{- with $namespace }}
  namespace: {{ . }}
  {{- end }}
  labels:
    {{- $labels | nindent 4 }}
rules:
  {{- include $args.rules $root | nindent 2 }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: {{ if $namespace }}RoleBinding{{ else }}ClusterRoleBinding{{ end }}
metadata:
  name: {{ $name }}
  {{- with $namespace }}
  namespace: {{ . }}
  {{- end }}
  labels:
    {{- $labels | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: {{ if $namespace }}Role{{ else }}ClusterRole{{ end }}
  name: {{ $name }}
subjects:
  - kind: ServiceAccount
    name: {{ $args.account }}
    namespace: {{ $root.Release.Namespace }}
{{- end }}
{{- end -}}
