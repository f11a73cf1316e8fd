{{/*
A Deployment of the operator image, hardened as deploy/base/deployment.yaml (restricted Pod
Security and more): (dict "root" $ "component" "controller"|"callback" "name" … "replicas" …
"resources" … "nodeOptions" … "args" (list …) "ports" (list "metrics" …)).
*/}}
{{- define "oauthapp-operator.deployment" -}}
{{- $root := .root -}}
{{- $values := $root.Values -}}
{{- $selector := include "oauthapp-operator.selectorLabels" (list $root .component) -}}
{{- $container := ternary "operator" "callback" (eq .component "controller") -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "oauthapp-operator.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
spec:
  replicas: {{ .replicas }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- $selector | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "oauthapp-operator.labels" $root | nindent 8 }}
        app.kubernetes.io/component: {{ .component }}
        {{- with $values.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        kubectl.kubernetes.io/default-container: {{ $container }}
        {{- with $values.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ .name }}
      # The operator talks to the apiserver with this ServiceAccount's projected token.
      automountServiceAccountToken: true
      # No Service environment variables: the process reads none of them.
      enableServiceLinks: false
      # On SIGTERM the operator finishes in-flight work, stores refresh results it holds and
      # releases the Lease within --shutdown-timeout, which sharedArgs sets 5 s below this.
      terminationGracePeriodSeconds: {{ $values.terminationGracePeriodSeconds }}
      {{- with $values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $values.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        runAsGroup: 65532
        seccompProfile:
          type: RuntimeDefault
      # Replicas on different nodes when the cluster has more than one.
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: kubernetes.io/hostname
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              {{- $selector | nindent 14 }}
      {{- with $values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $values.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: {{ $container }}
          image: {{ include "oauthapp-operator.image" $root }}
          imagePullPolicy: {{ $values.image.pullPolicy }}
          # Every flag can also be set as an OAUTHAPP_<FLAG> environment variable.
          args:
            {{- range .args }}
            - {{ . | quote }}
            {{- end }}
            {{- range $values.extraArgs }}
            - {{ . | quote }}
            {{- end }}
          env:
            # The operator namespace (state Secrets, Lease): the pod's own.
            - name: POD_NAMESPACE
              valueFrom:
                fieldRef:
                  apiVersion: v1
                  fieldPath: metadata.namespace
            - name: NODE_OPTIONS
              value: {{ .nodeOptions | quote }}
            # glibc malloc: fewer arenas, large buffers returned when freed (deploy/base/deployment.yaml).
            - name: MALLOC_ARENA_MAX
              value: "2"
            - name: MALLOC_MMAP_THRESHOLD_
              value: "65536"
            - name: MALLOC_TRIM_THRESHOLD_
              value: "131072"
            {{- with $values.proxy.httpsProxy }}
            - name: HTTPS_PROXY
              value: {{ . | quote }}
            {{- end }}
            {{- with $values.proxy.noProxy }}
            - name: NO_PROXY
              value: {{ . | quote }}
            {{- end }}
            {{- with $values.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          ports:
            - name: metrics
              containerPort: 8080
              protocol: TCP
            {{- if has "callback" .ports }}
            - name: callback
              containerPort: 8081
              protocol: TCP
            {{- end }}
          # The first list of a large cluster can take a while; liveness starts after this.
          startupProbe:
            httpGet:
              path: /healthz
              port: metrics
            periodSeconds: 2
            failureThreshold: 60
          livenessProbe:
            httpGet:
              path: /healthz
              port: metrics
            periodSeconds: 10
            timeoutSeconds: 2
            failureThreshold: 3
          readinessProbe:
            httpGet:
              path: /readyz
              port: metrics
            periodSeconds: 5
            timeoutSeconds: 2
            failureThreshold: 3
          resources:
            {{- toYaml .resources | nindent 12 }}
          securityContext:
            runAsNonRoot: true
            runAsUser: 65532
            runAsGroup: 65532
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities:
              drop: [ALL]
            seccompProfile:
              type: RuntimeDefault
          volumeMounts:
            # The root filesystem is read-only; Node.js and its libraries may want a scratch directory.
            - name: tmp
              mountPath: /tmp
      volumes:
        - name: tmp
          emptyDir:
            medium: Memory
            sizeLimit: 16Mi
{{- end -}}

{{/* The flags both components share: listeners, the callback's limits, namespaces, provider policy. */}}
{{- define "oauthapp-operator.sharedArgs" -}}
{{- $values := .Values -}}
{{- $args := list "--metrics-addr=:8080" "--callback-addr=:8081" -}}
{{- $args = append $args (printf "--callback-rate-limit=%s" $values.callback.rateLimit) -}}
{{- $args = append $args (printf "--callback-max-connections=%v" $values.callback.maxConnections) -}}
{{- with $values.callback.trustedProxies -}}
{{- $args = append $args (printf "--callback-trusted-proxies=%s" (join "," .)) -}}
{{- end -}}
{{- $args = append $args (printf "--log-level=%s" $values.logLevel) -}}
{{- /* The shutdown budget stays inside the pod's grace period: 5 s left for the process to exit. */ -}}
{{- $args = append $args (printf "--shutdown-timeout=%d" (sub (int $values.terminationGracePeriodSeconds) 5)) -}}
{{- range $values.extraArgs -}}
{{- if hasPrefix "--shutdown-timeout" . -}}
{{- fail "extraArgs may not set --shutdown-timeout: it follows terminationGracePeriodSeconds (5 s shorter); set that value instead" -}}
{{- end -}}
{{- end -}}
{{- $args = append $args (printf "--provider-hosts=%s" (join "," $values.providerHosts)) -}}
{{- with $values.watchNamespaces -}}
{{- $args = append $args (printf "--namespaces=%s" (join "," .)) -}}
{{- end -}}
{{- toJson $args -}}
{{- end -}}
