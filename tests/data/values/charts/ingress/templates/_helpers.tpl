{{/* Like ingress-nginx: `repository` when set, else registry/image; then :tag and @digest. */}}
{{- define "ingress.image" -}}
{{- if .repository -}}{{- .repository -}}{{- else -}}{{- printf "%s/%s" .registry .image -}}{{- end -}}
{{- printf ":%s" .tag -}}
{{- if .digest -}}{{- printf "@%s" .digest -}}{{- end -}}
{{- end -}}
