package provider

import (
	"fmt"

	v1 "k8s.io/api/core/v1"
)

// The Service's own changes the allocation model makes: what a careless operator does.

func (w *modelWorld) newService(name string) *v1.Service {
	w.uid++
	rng := w.rng
	ns := "default"
	if rng.IntN(3) == 0 {
		ns = "prod"
	}
	opts := []svcOption{withNamespace(ns), withUID(fmt.Sprint("uid-", w.uid)), createdAt(w.uid)}
	switch r := rng.IntN(20); {
	case r < 8:
	case r < 11:
		opts = append(opts, withFamilies(ss, v4))
	case r < 13:
		opts = append(opts, withFamilies(ss, v6))
	case r < 16:
		opts = append(opts, withFamilies(pds, v4, v6))
	case r < 18:
		opts = append(opts, withFamilies(rds, v4, v6))
	default:
		opts = append(opts, withFamilies(rds, v6, v4))
	}
	svc := testService(name, opts...)
	w.mutateSharing(svc)
	w.mutatePorts(svc)
	if rng.IntN(5) == 0 {
		withLocal(map[string]string{"app": []string{"x", "y"}[rng.IntN(2)]})(svc)
	}
	if rng.IntN(5) == 0 {
		w.mutatePool(svc)
	}
	if len(svc.Spec.IPFamilies) == 0 && rng.IntN(6) == 0 {
		w.mutateRequested(svc)
	}
	return svc
}

func (w *modelWorld) mutateSharing(svc *v1.Service) {
	delete(svc.Annotations, AnnotationSharingKey)
	delete(svc.Annotations, "metallb.io/allow-shared-ip")
	switch w.rng.IntN(4) {
	case 0:
		withAnnotation(AnnotationSharingKey, "k1")(svc)
	case 1:
		withAnnotation("metallb.io/allow-shared-ip", "k2")(svc)
	}
}

func (w *modelWorld) mutatePorts(svc *v1.Service) {
	var ports []v1.ServicePort
	for _, p := range modelPorts {
		if w.rng.IntN(2) == 0 {
			ports = append(ports, p)
		}
	}
	if len(ports) == 0 {
		ports = modelPorts[:1]
	}
	svc.Spec.Ports = ports
}

func (w *modelWorld) mutatePool(svc *v1.Service) {
	delete(svc.Annotations, AnnotationPool)
	switch w.rng.IntN(4) {
	case 0:
		withAnnotation(AnnotationPool, "manual")(svc)
	case 1:
		withAnnotation(AnnotationPool, "b")(svc)
	case 2:
		withAnnotation(AnnotationPool, "wide")(svc)
	}
}

func (w *modelWorld) mutateRequested(svc *v1.Service) {
	svc.Spec.LoadBalancerIP = ""
	delete(svc.Annotations, AnnotationLoadBalancerIPs)
	requestable := []string{"10.0.0.3", "10.0.1.2", "10.0.2.2", "10.0.3.1", "10.0.9.9"}
	ip := requestable[w.rng.IntN(len(requestable))]
	switch w.rng.IntN(3) {
	case 0:
		withLoadBalancerIP(ip)(svc)
	case 1:
		withAnnotation(AnnotationLoadBalancerIPs, ip)(svc)
	}
}

// change applies one of the Service's own changes.
func (w *modelWorld) change(m *modelService) string {
	svc := m.svc.DeepCopy()
	var what string
	switch w.rng.IntN(8) {
	case 0:
		w.mutatePorts(svc)
		what = "ports"
	case 7:
		// The API server lets a Service gain or drop its secondary family, never change its
		// primary one.
		if len(svc.Spec.IPFamilies) == 0 || svc.Spec.IPFamilies[0] != v4 || svc.Spec.LoadBalancerIP != "" || svc.Annotations[AnnotationLoadBalancerIPs] != "" {
			return ""
		}
		if len(svc.Spec.IPFamilies) == 2 {
			withFamilies(ss, v4)(svc)
			what = "families: dropped IPv6"
		} else {
			withFamilies([]v1.IPFamilyPolicy{pds, rds}[w.rng.IntN(2)], v4, v6)(svc)
			what = "families: added IPv6"
		}
	case 1:
		w.mutateSharing(svc)
		what = "sharing key"
	case 2:
		if len(svc.Spec.IPFamilies) > 0 {
			return ""
		}
		w.mutateRequested(svc)
		what = "requested IP"
	case 3:
		w.mutatePool(svc)
		what = "pool annotation"
	case 4:
		if svc.Annotations[AnnotationLoadBalancerIPs] == "garbage" {
			delete(svc.Annotations, AnnotationLoadBalancerIPs)
			what = "annotation repaired"
		} else {
			withAnnotation(AnnotationLoadBalancerIPs, "garbage")(svc)
			svc.Spec.LoadBalancerIP = ""
			what = "annotation broken"
		}
	case 5:
		if svc.Spec.ExternalTrafficPolicy == v1.ServiceExternalTrafficPolicyLocal {
			svc.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyCluster
			svc.Spec.Selector = nil
		} else {
			withLocal(map[string]string{"app": []string{"x", "y"}[w.rng.IntN(2)]})(svc)
		}
		what = "traffic policy"
	default:
		if svc.Annotations[AnnotationSharingKey] == "" {
			return ""
		}
		withAnnotation(AnnotationSharingKey, []string{"k1", "k3"}[w.rng.IntN(2)])(svc)
		what = "sharing key renamed"
	}
	m.svc = svc
	m.gen++
	return what
}
