package lab

import (
	"context"
	"fmt"
	"slices"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	cloudproviderapi "k8s.io/cloud-provider/api"
)

// ensureNodes creates the Node objects that do not exist, as a kubelet with
// --cloud-provider=external and --node-ip would register them: with the uninitialized taint and
// the provided-node-ip annotation, for our CCM to initialise. kwok manages them (annotation).
func (l *Lab) ensureNodes(ctx context.Context) error {
	for _, name := range Nodes {
		h, _ := Node(name)
		cidrs := podCIDRs(name)
		node := &v1.Node{
			ObjectMeta: metav1.ObjectMeta{
				Name: name,
				Labels: map[string]string{
					v1.LabelHostname:   name,
					v1.LabelOSStable:   "linux",
					v1.LabelArchStable: "amd64",
				},
				Annotations: map[string]string{
					cloudproviderapi.AnnotationAlphaProvidedIPAddr: h.IPv4.String() + "," + h.IPv6.String(),
					kwokAnnotation: "fake",
				},
			},
			Spec: v1.NodeSpec{
				PodCIDR:  cidrs[0],
				PodCIDRs: cidrs,
				Taints: []v1.Taint{{
					Key:    cloudproviderapi.TaintExternalCloudProvider,
					Value:  "true",
					Effect: v1.TaintEffectNoSchedule,
				}},
			},
		}
		_, err := l.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{FieldManager: "lab"})
		switch {
		case err == nil:
			l.printf("%-36s created\n", "node/"+name)
		case apierrors.IsAlreadyExists(err):
		default:
			return fmt.Errorf("creating Node %s: %w", name, err)
		}
	}
	return nil
}

// NodeProblem says why a Node is not yet initialised by the CCM and Ready, or "" if it is.
func NodeProblem(node *v1.Node) string {
	h, err := Node(node.Name)
	if err != nil {
		return err.Error()
	}
	if node.Spec.ProviderID != "baremetal://"+node.Name {
		return fmt.Sprintf("providerID is %q", node.Spec.ProviderID)
	}
	for _, t := range node.Spec.Taints {
		if t.Key == cloudproviderapi.TaintExternalCloudProvider {
			return "still has the uninitialized taint"
		}
	}
	var internal []string
	for _, a := range node.Status.Addresses {
		if a.Type == v1.NodeInternalIP {
			internal = append(internal, a.Address)
		}
	}
	if want := []string{h.IPv4.String(), h.IPv6.String()}; !slices.Equal(internal, want) {
		return fmt.Sprintf("InternalIPs are %v, want %v", internal, want)
	}
	for _, c := range node.Status.Conditions {
		if c.Type == v1.NodeReady {
			if c.Status != v1.ConditionTrue {
				return "Ready is " + string(c.Status)
			}
			return ""
		}
	}
	return "no Ready condition yet"
}

func (l *Lab) waitNodes(ctx context.Context) error {
	start := time.Now()
	problems := map[string]string{}
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		clear(problems)
		for _, name := range Nodes {
			node, err := l.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				problems[name] = err.Error()
			} else if p := NodeProblem(node); p != "" {
				problems[name] = p
			}
		}
		return len(problems) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("nodes not initialised and Ready (see .lab/%s.log and .lab/kwok.log): %v: %w", CCMComponent, problems, err)
	}
	l.printf("%-36s initialised by the CCM and Ready in %.1fs\n", "nodes", time.Since(start).Seconds())
	return nil
}

// waitDemo waits for the demo Service's EXTERNAL-IP and a Running, Ready demo pod.
func (l *Lab) waitDemo(ctx context.Context) (string, error) {
	start := time.Now()
	var vip, why string
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		svc, err := l.Client.CoreV1().Services(metav1.NamespaceDefault).Get(ctx, "metallb-demo", metav1.GetOptions{})
		if err != nil {
			why = err.Error()
			return false, nil
		}
		if len(svc.Status.LoadBalancer.Ingress) == 0 {
			why = "the Service has no EXTERNAL-IP (see .lab/" + CCMComponent + ".log)"
			return false, nil
		}
		vip = svc.Status.LoadBalancer.Ingress[0].IP
		pods, err := l.Client.CoreV1().Pods(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{LabelSelector: "app=metallb-demo"})
		if err != nil {
			why = err.Error()
			return false, nil
		}
		for _, p := range pods.Items {
			if PodReady(&p) {
				return true, nil
			}
		}
		why = "no Running and Ready demo pod (see .lab/kube-controller-manager.log, kube-scheduler.log, kwok.log)"
		return false, nil
	})
	if err != nil {
		return "", fmt.Errorf("waiting for the demo: %s: %w", why, err)
	}
	l.printf("%-36s EXTERNAL-IP %s, pod Running, in %.1fs\n", "service/metallb-demo", vip, time.Since(start).Seconds())
	return vip, nil
}

// PodReady reports whether a pod is Running, Ready and has an IP.
func PodReady(p *v1.Pod) bool {
	if p.Status.Phase != v1.PodRunning || p.Status.PodIP == "" || p.DeletionTimestamp != nil {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == v1.PodReady {
			return c.Status == v1.ConditionTrue
		}
	}
	return false
}
