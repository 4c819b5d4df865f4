package lab

// kwokAnnotation marks the Nodes kwok manages (kwok --manage-nodes-with-annotation-selector).
const kwokAnnotation = "kwok.x-k8s.io/node"

// kwokStages is kwok's configuration: the stages it plays on Nodes and Pods (kwok has no
// built-in default when run alone). They are the lab's own, written for one purpose: kwok
// stands in for kubelets and must not fight baremetal-cloud-controller-manager over a Node.
//
//   - Node stages patch status.conditions (and capacity, nodeInfo, phase) only. They never write
//     status.addresses (kwok's stock stages do when a Node has no InternalIP yet, which races the
//     CCM's initialisation from the alpha.kubernetes.io/provided-node-ip annotation) and never
//     touch spec (providerID, taints): the CCM owns those.
//   - Pods bound to a lab Node become Running and Ready at once, with pod IPs from their Node's
//     spec.podCIDRs (one per family, inside PodPrefix and PodPrefix6) and host IPs from the
//     Node's InternalIPs as the CCM set them. Deleted pods go at once. The node's pod host
//     (RunPodHost) then serves those IPs in the node's namespace.
//
// Node leases come from kwok's lease controller (--node-lease-duration-seconds), so the node
// lifecycle controller sees the nodes alive; the heartbeat stage only refreshes the conditions'
// timestamps now and then.
const kwokStages = `
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: lab-node-ready
spec:
  resourceRef: {apiGroup: v1, kind: Node}
  selector:
    matchExpressions:
      - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
        operator: NotIn
        values: ["True"]
  next:
    patches:
      - subresource: status
        root: status
        type: strategic
        template: |
          {{ $now := Now | Quote }}
          conditions:
          - {type: Ready, status: "True", reason: KubeletReady, message: "kwok stands in for the kubelet", lastHeartbeatTime: {{ $now }}, lastTransitionTime: {{ $now }}}
          - {type: MemoryPressure, status: "False", reason: KubeletHasSufficientMemory, message: "", lastHeartbeatTime: {{ $now }}, lastTransitionTime: {{ $now }}}
          - {type: DiskPressure, status: "False", reason: KubeletHasNoDiskPressure, message: "", lastHeartbeatTime: {{ $now }}, lastTransitionTime: {{ $now }}}
          - {type: PIDPressure, status: "False", reason: KubeletHasSufficientPID, message: "", lastHeartbeatTime: {{ $now }}, lastTransitionTime: {{ $now }}}
          - {type: NetworkUnavailable, status: "False", reason: RouteCreated, message: "", lastHeartbeatTime: {{ $now }}, lastTransitionTime: {{ $now }}}
          capacity: {cpu: "32", memory: 128Gi, pods: "110"}
          allocatable: {cpu: "32", memory: 128Gi, pods: "110"}
          nodeInfo:
            architecture: amd64
            operatingSystem: linux
            kubeletVersion: kwok
            containerRuntimeVersion: kwok
            kernelVersion: kwok
            osImage: "lab network namespace"
            machineID: ""
            systemUUID: ""
            bootID: ""
          phase: Running
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: lab-node-heartbeat
spec:
  resourceRef: {apiGroup: v1, kind: Node}
  selector:
    matchExpressions:
      - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
        operator: In
        values: ["True"]
  delay:
    durationMilliseconds: 30000
    jitterDurationMilliseconds: 40000
  next:
    patches:
      - subresource: status
        root: status
        type: strategic
        template: |
          {{ $now := Now | Quote }}
          conditions:
          {{ range .status.conditions }}
          - {type: {{ .type | Quote }}, lastHeartbeatTime: {{ $now }}}
          {{ end }}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: lab-pod-ready
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:
      - key: .metadata.deletionTimestamp
        operator: DoesNotExist
      - key: .status.phase
        operator: In
        values: [Pending]
      - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
        operator: NotIn
        values: ["True"]
  next:
    patches:
      - subresource: status
        root: status
        type: strategic
        template: |
          {{ $now := Now | Quote }}
          phase: Running
          startTime: {{ $now }}
          conditions:
          - {type: PodReadyToStartContainers, status: "True", lastTransitionTime: {{ $now }}}
          - {type: Initialized, status: "True", lastTransitionTime: {{ $now }}}
          - {type: ContainersReady, status: "True", lastTransitionTime: {{ $now }}}
          - {type: Ready, status: "True", lastTransitionTime: {{ $now }}}
          {{ range .spec.readinessGates }}
          - {type: {{ .conditionType | Quote }}, status: "True", lastTransitionTime: {{ $now }}}
          {{ end }}
          containerStatuses:
          {{ range .spec.containers }}
          - {name: {{ .name | Quote }}, image: {{ .image | Quote }}, ready: true, started: true, restartCount: 0, state: {running: {startedAt: {{ $now }}}}}
          {{ end }}
          {{ with NodeIPsWith .spec.nodeName }}
          hostIP: {{ index . 0 | Quote }}
          hostIPs:
          {{ range . }}
          - ip: {{ . | Quote }}
          {{ end }}
          {{ end }}
          {{ with PodIPsWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) }}
          podIP: {{ index . 0 | Quote }}
          podIPs:
          {{ range . }}
          - ip: {{ . | Quote }}
          {{ end }}
          {{ end }}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: lab-pod-delete
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:
      - key: .metadata.deletionTimestamp
        operator: Exists
  next:
    delete: true
`
