{{/* Like bitnami's common.images.image: global.imageRegistry wins over the map's registry,
     a digest replaces the tag. */}}
{{- define "webapp.image" -}}
{{- $registry := .imageRoot.registry -}}
{{- if and .global .global.imageRegistry -}}{{- $registry = .global.imageRegistry -}}{{- end -}}
{{- $separator := ":" -}}
{{- $termination := .imageRoot.tag | toString -}}
{{- if .imageRoot.digest -}}{{- $separator = "@" -}}{{- $termination = .imageRoot.digest | toString -}}{{- end -}}
{{- if $registry -}}
{{- printf "%s/%s%s%s" $registry .imageRoot.repository $separator $termination -}}
{{- else -}}
{{- printf "%s%s%s" .imageRoot.repository $separator $termination -}}
{{- end -}}
{{- end -}}
