{{/*
The chart has one source of truth, manifests/: hack/update-manifests.sh renders each kustomize
base into files/, and "baremetal.render" emits the objects of one such file, changed only where a
value says so. With default values the chart renders the same objects as manifests/install.yaml
(test/integration/manifests_test.go holds it to that).

Arguments: dict "file" (path under files/), "v" (the component's values, or nil), "root" ($).
*/}}
{{- define "baremetal.render" -}}
{{- $root := .root -}}
{{- $v := .v -}}
{{- range $doc := regexSplit "(?m)^---[ \t]*$" ($root.Files.Get .file) -1 }}
{{- $obj := fromYaml $doc }}
{{- if hasKey $obj "Error" }}
{{- fail (printf "%s: %s" $.file $obj.Error) }}
{{- end }}
{{- if $obj }}
{{- if and (eq $obj.kind "CustomResourceDefinition") $root.Values.crds.keep }}
{{- $annotations := default (dict) $obj.metadata.annotations }}
{{- $_ := set $annotations "helm.sh/resource-policy" "keep" }}
{{- $_ := set $obj.metadata "annotations" $annotations }}
{{- end }}
{{- if eq $obj.kind "Deployment" }}
{{- $_ := set $obj.spec "replicas" (int $v.replicas) }}
{{- end }}
{{- if has $obj.kind (list "Deployment" "DaemonSet") }}
{{- include "baremetal.workload" (dict "pod" $obj.spec.template.spec "v" $v "root" $root) }}
{{- end }}
{{- with $root.Values.commonLabels }}
{{- $_ := set $obj.metadata "labels" (merge (default (dict) $obj.metadata.labels) .) }}
{{- end }}
---
{{ toYaml $obj }}
{{- end }}
{{- end }}
{{- end -}}

{{/* baremetal.workload changes a pod spec (in place) from a component's values. */}}
{{- define "baremetal.workload" -}}
{{- $pod := .pod -}}
{{- $v := .v -}}
{{- $c := index $pod.containers 0 -}}
{{- $_ := set $c "image" (printf "%s:%s" $v.image.repository (default .root.Chart.AppVersion $v.image.tag)) -}}
{{- with $v.image.pullPolicy }}{{ $_ := set $c "imagePullPolicy" . }}{{ end -}}
{{- with $v.extraArgs }}{{ $_ := set $c "args" (concat $c.args .) }}{{ end -}}
{{- with $v.resources }}{{ $_ := set $c "resources" . }}{{ end -}}
{{- with $v.nodeSelector }}{{ $_ := set $pod "nodeSelector" . }}{{ end -}}
{{- with $v.tolerations }}{{ $_ := set $pod "tolerations" . }}{{ end -}}
{{- with $v.priorityClassName }}{{ $_ := set $pod "priorityClassName" . }}{{ end -}}
{{- with .root.Values.imagePullSecrets }}{{ $_ := set $pod "imagePullSecrets" . }}{{ end -}}
{{- end -}}
