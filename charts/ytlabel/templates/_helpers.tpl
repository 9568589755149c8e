{{/* Chart name, truncated to 63 characters (a DNS label). */}}
{{- define "ytlabel.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Resource name prefix: the release name, or <release>-<chart> when the release name lacks the chart name. */}}
{{- define "ytlabel.fullname" -}}
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

{{/* Standard labels on every object. */}}
{{- define "ytlabel.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "ytlabel.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ytlabel
{{- end }}

{{/* An image reference: <registry>/<name>@<digest> when image.digests has one for this image, else
     <registry>/<name>:<tag>. Called with (dict "root" . "name" <image name> "key" <key under image.digests>). */}}
{{- define "ytlabel.image" -}}
{{- $digest := "" }}
{{- if .key }}{{ $digest = index .root.Values.image.digests .key | default "" }}{{ end }}
{{- if $digest }}
{{- printf "%s/%s@%s" .root.Values.image.registry .name $digest }}
{{- else }}
{{- printf "%s/%s:%s" .root.Values.image.registry .name (default .root.Chart.AppVersion .root.Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "ytlabel.pipelineServiceAccount" -}}
{{- default (printf "%s-pipeline" (include "ytlabel.fullname" .)) .Values.pipelineRunner.serviceAccount.name }}
{{- end }}

{{- define "ytlabel.trainerServiceAccount" -}}
{{- default (printf "%s-trainer" (include "ytlabel.fullname" .)) .Values.trainer.serviceAccount.name }}
{{- end }}

{{- define "ytlabel.servingServiceAccount" -}}
{{- default (printf "%s-serving" (include "ytlabel.fullname" .)) .Values.serving.serviceAccount.name }}
{{- end }}

{{/* Restricted Pod Security Standard: non-root, no privilege escalation, read-only root filesystem. */}}
{{- define "ytlabel.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "ytlabel.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
{{- end }}

{{/* True when the cluster serves the Prometheus operator's API (helm template: --api-versions monitoring.coreos.com/v1),
     or when apis.prometheusOperator says so (GitOps tools render with `helm template`, which sees no cluster). */}}
{{- define "ytlabel.hasPrometheusOperator" -}}
{{- if or .Values.apis.prometheusOperator (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1") }}true{{ end }}
{{- end }}

{{/* True when the cluster serves Kubeflow Trainer v2's API, or apis.trainerV2 says so. */}}
{{- define "ytlabel.hasTrainerV2" -}}
{{- if or .Values.apis.trainerV2 (.Capabilities.APIVersions.Has "trainer.kubeflow.org/v1alpha1") }}true{{ end }}
{{- end }}

{{/* NetworkPolicy egress rules: the cluster DNS, and S3 (networkPolicy.s3: peers and ports from values). */}}
{{- define "ytlabel.egressToDnsAndS3" -}}
- to:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: {{ .Values.networkPolicy.dnsNamespace }}
  ports:
    - {port: 53, protocol: UDP}
    - {port: 53, protocol: TCP}
- to:
    {{- toYaml .Values.networkPolicy.s3.to | nindent 4 }}
  ports:
    {{- range .Values.networkPolicy.s3.ports }}
    - {port: {{ . }}, protocol: TCP}
    {{- end }}
{{- end }}
