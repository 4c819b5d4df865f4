package v1alpha1

// SharedVIP is a VIP that several Services hold, and the terms of their agreement.
type SharedVIP struct {
	// Address is the VIP.
	// +kubebuilder:validation:MaxLength=45
	Address string `json:"address"`
	// SharingKey is the baremetal.dev/sharing-key all holders had when they agreed.
	// +kubebuilder:validation:MaxLength=253
	SharingKey string `json:"sharingKey"`
	// LocalSelector is, when the holders use externalTrafficPolicy Local, the pod selector they
	// all had (they must run on the same pods); empty otherwise.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	LocalSelector string `json:"localSelector,omitempty"`
	// Services holding the VIP, namespace/name, sorted.
	// +listType=set
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=317
	Services []string `json:"services"`
}
