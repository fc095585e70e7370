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

{{/* The superuser's Secret (keys `password`, `url`): statefulset mode only. */}}
{{- define "userflow.postgresqlSecretName" -}}
{{- default (include "userflow.postgresqlName" .) .Values.postgresql.statefulset.existingSecret }}
{{- end }}

{{/* The roles' Secret (keys `<role>-password`, `<role>-url`): statefulset mode only. */}}
{{- define "userflow.postgresqlRolesSecretName" -}}
{{- default (printf "%s-roles" (include "userflow.postgresqlName" .)) .Values.postgresql.statefulset.roles.existingSecret }}
{{- end }}

{{/* Database roles ------------------------------------------------------------ */}}

{{/* The login roles of the least-privilege contract (DESIGN.md, invariant 5), none a
     superuser: migrator (owns the schema), consumer, ingest, operator, reader, and
     dashboards (Grafana's data source; no component of the chart logs in as it). */}}
{{- define "userflow.dbRoles" -}}
migrator consumer ingest operator reader dashboards
{{- end }}

{{/* A role's PostgreSQL name; call with (dict "root" $ "role" "consumer"). In
     cloudnativepg mode the migrator is the database owner CNPG created
     (postgresql.username); elsewhere the names are fixed: userflow_<role>. */}}
{{- define "userflow.dbRoleName" -}}
{{- if and (eq .role "migrator") (eq .root.Values.postgresql.mode "cloudnativepg") }}
{{- .root.Values.postgresql.username }}
{{- else }}
{{- printf "userflow_%s" .role }}
{{- end }}
{{- end }}

{{/* The role a component connects as ("" for none); call with the component name. */}}
{{- define "userflow.componentDbRole" -}}
{{- $roles := dict "migrate" "migrator" "consumer" "consumer" "ingest" "ingest" "operator" "operator" "api" "reader" "mcp" "reader" }}
{{- get $roles . }}
{{- end }}

{{/* The variable a role's URL is given in; call with the role. */}}
{{- define "userflow.dbUrlEnvName" -}}
{{- if eq . "migrator" }}UF_MIGRATE_DATABASE_URL
{{- else }}{{ printf "UF_%s_DATABASE_URL" (upper .) }}
{{- end }}
{{- end }}

{{/* The Secret of a managed role in cloudnativepg mode (kubernetes.io/basic-auth,
     plus `uri`); call with (dict "root" $ "role" "consumer"). */}}
{{- define "userflow.cnpgRoleSecretName" -}}
{{- printf "%s-role-%s" (include "userflow.cnpgClusterName" .root) .role }}
{{- end }}

{{/* name and key of the Secret that holds a role's URL (a secretKeyRef's body);
     call with (dict "root" $ "role" "consumer"). */}}
{{- define "userflow.dbUrlSecretRef" -}}
{{- $pg := .root.Values.postgresql }}
{{- if eq $pg.mode "statefulset" }}
name: {{ include "userflow.postgresqlRolesSecretName" .root }}
key: {{ .role }}-url
{{- else if eq $pg.mode "cloudnativepg" }}
{{- if eq .role "migrator" }}
name: {{ printf "%s-app" (include "userflow.cnpgClusterName" .root) }}
{{- else }}
name: {{ include "userflow.cnpgRoleSecretName" . }}
{{- end }}
key: uri
{{- else }}
{{- $own := index $pg.external.roles .role }}
{{- if $own.existingSecret }}
name: {{ $own.existingSecret }}
key: {{ $own.key }}
{{- else }}
name: {{ required (printf "postgresql.external.existingSecret (or postgresql.external.roles.%s.existingSecret) is required when postgresql.mode=external" .role) $pg.external.existingSecret }}
key: {{ $pg.external.key }}
{{- end }}
{{- end }}
{{- end }}

{{/* Pod pieces ------------------------------------------------------------- */}}

{{/* The environment every UserFlow container gets;
     call with (dict "root" $ "component" "ingest") */}}
{{- define "userflow.env" -}}
- name: UF_SERVICE_NAME
  value: {{ printf "userflow-%s" .component | quote }}
{{- /* Only this component's own role: no UF_DATABASE_URL, no other role's URL. */}}
{{- with include "userflow.componentDbRole" .component }}
- name: {{ include "userflow.dbUrlEnvName" . }}
  valueFrom:
    secretKeyRef:
      {{- include "userflow.dbUrlSecretRef" (dict "root" $.root "role" .) | trim | nindent 6 }}
{{- end }}
{{- with .root }}
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

{{/* Pod template metadata; call with (dict "root" $ "component" "ingest"), and
     optionally "annotations" (dict). */}}
{{- define "userflow.podMetadata" -}}
labels:
  {{- include "userflow.labels" . | nindent 2 }}
  {{- with .root.Values.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- /* A component's own annotations (.annotations, optional) win over podAnnotations. */}}
{{- with merge (dict) (default (dict) .annotations) .root.Values.podAnnotations }}
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

{{/* Grafana ---------------------------------------------------------------- */}}

{{/* "true" when the chart ships the dashboards' PostgreSQL data source. */}}
{{- define "userflow.grafanaDatasource" -}}
{{- if and .Values.metrics.dashboards.enabled .Values.metrics.dashboards.datasource.enabled }}true{{ end }}
{{- end }}

{{/* Grafana's namespace: where the dashboards, the data source and its Secret go. */}}
{{- define "userflow.grafanaNamespace" -}}
{{- default .Release.Namespace .Values.metrics.dashboards.namespace }}
{{- end }}

{{/* The Secret (in Grafana's namespace) whose key <passwordEnv> is userflow_dashboards'
     password: the one given, or the chart's own. */}}
{{- define "userflow.grafanaSecretName" -}}
{{- default (printf "%s-grafana-datasource" (include "userflow.fullname" .)) .Values.metrics.dashboards.datasource.existingSecret }}
{{- end }}

{{/* The chart's copy of userflow_dashboards' password for Grafana, rendered where the
     password is made (postgresql.yaml), so both hold the same; call with
     (dict "root" $ "password" <the password>). */}}
{{- define "userflow.grafanaSecret" -}}
{{- $root := .root }}
{{- $ds := $root.Values.metrics.dashboards.datasource }}
{{- if and (include "userflow.grafanaDatasource" $root) (not $ds.existingSecret) }}
---
# userflow_dashboards' password, for Grafana's environment: the data source's file
# (the ConfigMap beside this) reads it as ${{ $ds.passwordEnv }}. See the chart README, "Grafana".
apiVersion: v1
kind: Secret
metadata:
  name: {{ include "userflow.grafanaSecretName" $root }}
  namespace: {{ include "userflow.grafanaNamespace" $root }}
  labels:
    {{- include "userflow.labels" (dict "root" $root "component" "dashboards") | nindent 4 }}
type: Opaque
stringData:
  {{ $ds.passwordEnv }}: {{ .password | quote }}
{{- end }}
{{- end }}
