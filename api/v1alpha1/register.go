package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupName is the API group of every resource in this package.
const GroupName = "baremetal.dev"

// SchemeGroupVersion is the group and version of this package.
var SchemeGroupVersion = schema.GroupVersion{Group: GroupName, Version: "v1alpha1"}

// IPPoolResource is the plural resource of IPPool, for dynamic and REST clients.
var IPPoolResource = SchemeGroupVersion.WithResource("ippools")

// BGPPeerResource is the plural resource of BGPPeer, for dynamic and REST clients.
var BGPPeerResource = SchemeGroupVersion.WithResource("bgppeers")

var (
	schemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	// AddToScheme registers the types of this package with a scheme.
	AddToScheme = schemeBuilder.AddToScheme
)

func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(SchemeGroupVersion, &IPPool{}, &IPPoolList{}, &BGPPeer{}, &BGPPeerList{})
	metav1.AddToGroupVersion(scheme, SchemeGroupVersion)
	return nil
}
