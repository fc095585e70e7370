{{/*
A stateless HTTP Deployment + Service + PodDisruptionBudget (the query API and
the MCP server). Call with (dict "root" $ "component" "api" "values" .Values.api
"args" (list ...) "httpProbes" true|false), and optionally "env" (a list of EnvVar
objects), "metricsPort" (a port of its own for /metrics, named `metrics` in the pod
and the Service; its gunicorn workers write their metrics to an emptyDir) and
"annotations" (the pods').
*/}}
{{- define "userflow.httpService" -}}
{{- $root := .root }}
{{- $c := dict "root" .root "component" .component }}
{{- $name := include "userflow.componentName" $c }}
{{- $v := .values }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $name }}
  labels:
    {{- include "userflow.labels" $c | nindent 4 }}
spec:
  replicas: {{ $v.replicas }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "userflow.selectorLabels" $c | nindent 6 }}
  template:
    metadata:
      {{- include "userflow.podMetadata" (merge (dict "annotations" (default (dict) .annotations)) $c) | nindent 6 }}
    spec:
      serviceAccountName: {{ include "userflow.serviceAccountName" $root }}
      automountServiceAccountToken: false
      {{- include "userflow.podCommon" $root | trim | nindent 6 }}
      containers:
        - name: {{ .component }}
          image: {{ include "userflow.image" $root }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          args:
            {{- toYaml .args | nindent 12 }}
          env:
            {{- include "userflow.env" $c | nindent 12 }}
            {{- with .env }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
            {{- if .metricsPort }}
            # Every gunicorn worker writes its metrics here; /metrics sums them.
            - name: PROMETHEUS_MULTIPROC_DIR
              value: /var/run/userflow/metrics
            {{- end }}
          ports:
            - name: http
              containerPort: {{ $v.port }}
              protocol: TCP
            {{- with .metricsPort }}
            - name: metrics
              containerPort: {{ . }}
              protocol: TCP
            {{- end }}
          {{- if .httpProbes }}
          livenessProbe:
            httpGet: {path: /healthz, port: http}
            periodSeconds: 10
            timeoutSeconds: 3
          readinessProbe:
            httpGet: {path: /readyz, port: http}
            periodSeconds: 5
            timeoutSeconds: 3
          {{- else }}
          livenessProbe:
            tcpSocket: {port: http}
            periodSeconds: 10
          readinessProbe:
            tcpSocket: {port: http}
            periodSeconds: 5
          {{- end }}
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.containerSecurityContext | nindent 12 }}
          volumeMounts:
            - {name: tmp, mountPath: /tmp}
            {{- if .metricsPort }}
            - {name: metrics, mountPath: /var/run/userflow/metrics}
            {{- end }}
      volumes:
        - name: tmp
          emptyDir: {sizeLimit: 64Mi}
        {{- if .metricsPort }}
        - name: metrics
          emptyDir: {medium: Memory, sizeLimit: 64Mi}
        {{- end }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $name }}
  labels:
    {{- include "userflow.labels" $c | nindent 4 }}
  {{- with $v.service.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: {{ $v.service.type }}
  selector:
    {{- include "userflow.selectorLabels" $c | nindent 4 }}
  ports:
    - name: http
      port: {{ $v.service.port }}
      targetPort: http
      protocol: TCP
    {{- with .metricsPort }}
    # For the ServiceMonitor; nothing routes to it.
    - name: metrics
      port: {{ . }}
      targetPort: metrics
      protocol: TCP
    {{- end }}
{{- if gt (int $v.replicas) 1 }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ $name }}
  labels:
    {{- include "userflow.labels" $c | nindent 4 }}
spec:
  minAvailable: {{ $v.pdb.minAvailable }}
  selector:
    matchLabels:
      {{- include "userflow.selectorLabels" $c | nindent 6 }}
{{- end }}
{{- end }}
