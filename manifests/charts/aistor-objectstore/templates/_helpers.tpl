{{- define "aistor.image" -}}
{{- $repo := index .root.Values.repositories .key -}}
{{- $image := index .root.Values.images .key -}}
{{ printf "%s/%s/%s:%s" $repo.hostname $repo.pathPrefix $image.name $image.tag }}
{{- end -}}
