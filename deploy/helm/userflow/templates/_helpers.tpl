{{/* Names ------------------------------------------------------------------ */}}

{{- define "userflow.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "userflow.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "userflow.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* "<fullname>-<component>"; call with (dict "root" $ "component" "ingest") */}}
{{- define "userflow.componentName" -}}
{{- printf "%s-%s" (include "userflow.fullname" .root) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels ----------------------------------------------------------------- */}}

{{- define "userflow.selectorLabels" -}}
app.kubernetes.io/name: {{ include "userflow.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Every object's labels; call with (dict "root" $ "component" "ingest") */}}
{{- define "userflow.labels" -}}
helm.sh/chart: {{ include "userflow.chart" .root }}
{{ include "userflow.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: userflow
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Images and service accounts ------------------------------------------- */}}

{{- define "userflow.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "userflow.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "userflow.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "userflow.operatorServiceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (include "userflow.componentName" (dict "root" . "component" "operator")) .Values.operator.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Kafka ------------------------------------------------------------------ */}}

{{- define "userflow.kafkaClusterName" -}}
{{- default (include "userflow.componentName" (dict "root" . "component" "kafka")) .Values.kafka.strimzi.clusterName }}
{{- end }}

{{- define "userflow.kafkaNamespace" -}}
{{- default .Release.Namespace .Values.kafka.strimzi.namespace }}
{{- end }}

{{- define "userflow.kafkaBootstrap" -}}
{{- if eq .Values.kafka.mode "external" }}
{{- required "kafka.bootstrap is required when kafka.mode=external" .Values.kafka.bootstrap }}
{{- else }}
{{- printf "%s-kafka-bootstrap.%s.svc:%d" (include "userflow.kafkaClusterName" .) (include "userflow.kafkaNamespace" .) (int .Values.kafka.strimzi.listenerPort) }}
{{- end }}
{{- end }}

{{/* PostgreSQL ------------------------------------------------------------- */}}

{{- define "userflow.postgresqlName" -}}
{{- include "userflow.componentName" (dict "root" . "component" "postgresql") }}
{{- end }}

{{- define "userflow.cnpgClusterName" -}}
{{- default (include "userflow.componentName" (dict "root" . "component" "pg")) .Values.postgresql.cloudnativepg.clusterName }}
{{- end }}

{{/* The Secret and key that hold UF_DATABASE_URL, as "name/key". */}}
{{- define "userflow.databaseUrlSecretName" -}}
{{- $pg := .Values.postgresql }}
{{- if eq $pg.mode "statefulset" }}
{{- default (include "userflow.postgresqlName" .) $pg.statefulset.existingSecret }}
{{- else if eq $pg.mode "cloudnativepg" }}
{{- printf "%s-app" (include "userflow.cnpgClusterName" .) }}
{{- else }}
{{- required "postgresql.external.existingSecret is required when postgresql.mode=external" $pg.external.existingSecret }}
{{- end }}
{{- end }}

{{- define "userflow.databaseUrlSecretKey" -}}
{{- $pg := .Values.postgresql }}
{{- if eq $pg.mode "statefulset" }}url
{{- else if eq $pg.mode "cloudnativepg" }}uri
{{- else }}{{ $pg.external.key }}
{{- end }}
{{- end }}

{{/* Pod pieces ------------------------------------------------------------- */}}

{{/* The environment every UserFlow container gets;
     call with (dict "root" $ "component" "ingest") */}}
{{- define "userflow.env" -}}
- name: UF_SERVICE_NAME
  value: {{ printf "userflow-%s" .component | quote }}
{{- with .root }}
- name: UF_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "userflow.databaseUrlSecretName" . }}
      key: {{ include "userflow.databaseUrlSecretKey" . }}
- name: UF_KAFKA_BOOTSTRAP
  value: {{ include "userflow.kafkaBootstrap" . | quote }}
- name: UF_TOPIC_PREFIX
  value: {{ .Values.config.topicPrefix | quote }}
- name: UF_CONSUMER_GROUP
  value: {{ .Values.config.consumerGroup | quote }}
- name: UF_LOG_LEVEL
  value: {{ .Values.config.logLevel | quote }}
{{- with .Values.config.otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- with .Values.config.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}
{{- end }}

{{/* Pod-level fields shared by every UserFlow pod (after `spec:`). */}}
{{- define "userflow.podCommon" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- end }}

{{/* Pod template metadata; call with (dict "root" $ "component" "ingest") */}}
{{- define "userflow.podMetadata" -}}
labels:
  {{- include "userflow.labels" . | nindent 2 }}
  {{- with .root.Values.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- with .root.Values.podAnnotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* "true" when a component runs more than one pod (fixed replicas or autoscaler minimum);
     call with (dict "replicas" N "autoscaled" bool "min" N) */}}
{{- define "userflow.multiReplica" -}}
{{- if .autoscaled }}{{ if gt (int .min) 1 }}true{{ end }}
{{- else if gt (int .replicas) 1 }}true
{{- end }}
{{- end }}

{{/* Consumer autoscaling actually rendered: "hpa", "keda" or "". */}}
{{- define "userflow.consumerAutoscaler" -}}
{{- $mode := .Values.consumer.autoscaling.mode }}
{{- if eq $mode "hpa" }}hpa
{{- else if and (eq $mode "keda") (.Capabilities.APIVersions.Has "keda.sh/v1alpha1") }}keda
{{- end }}
{{- end }}

{{- define "userflow.prometheusOperator" -}}
{{- if and .Values.metrics.serviceMonitor.enabled (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1") }}true{{ end }}
{{- end }}
