package manifests

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The Gateway API Inference Extension (GIE) Go module is not available to this
// project, so these types are written here to decode the same YAML as GIE v1.6:
// InferencePool from inference.networking.k8s.io/v1 and InferenceObjective from
// inference.networking.x-k8s.io/v1alpha2
// (https://github.com/kubernetes-sigs/gateway-api-inference-extension/tree/main/api).
// Field names and JSON tags follow upstream; the CRD's defaults and bounds are
// applied by Compile, not by decoding.

// InferencePool is a group of model server Pods behind one endpoint picker
// (inference.networking.k8s.io/v1).
type InferencePool struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired state of the pool.
	Spec InferencePoolSpec `json:"spec,omitzero"`
	// Status is written by controllers; Compile ignores it.
	Status InferencePoolStatus `json:"status,omitzero"`
}

// InferencePoolSpec is the desired state of an InferencePool.
type InferencePoolSpec struct {
	// Selector picks the pool's Pods by label, in the pool's namespace only.
	Selector LabelSelector `json:"selector,omitzero"`
	// TargetPorts are the model server ports on every selected Pod (1..8, unique).
	TargetPorts []Port `json:"targetPorts,omitempty"`
	// AppProtocol is "http" (default) or "kubernetes.io/h2c".
	AppProtocol string `json:"appProtocol,omitempty"`
	// EndpointPickerRef names the endpoint picker; optional since v1.6.
	EndpointPickerRef *EndpointPickerRef `json:"endpointPickerRef,omitempty"`
}

// LabelSelector is the deliberately small selector of an InferencePool: labels only.
type LabelSelector struct {
	// MatchLabels must all be present on a Pod for it to join the pool (1..64 entries).
	MatchLabels map[string]string `json:"matchLabels,omitempty"`
}

// Port is a port number wrapped in an object, as the InferencePool API spells it.
type Port struct {
	// Number is the port, 1..65535.
	Number int32 `json:"number,omitempty"`
}

// EndpointPickerRef refers to the endpoint picker (EPP) of an InferencePool.
type EndpointPickerRef struct {
	// Group of the referent; nil or "" is the core group.
	Group *string `json:"group,omitempty"`
	// Kind of the referent; empty means Service.
	Kind string `json:"kind,omitempty"`
	// Name of the referent, in the pool's namespace.
	Name string `json:"name,omitempty"`
	// Port of the picker's ext_proc server; required when Kind is Service.
	Port *Port `json:"port,omitempty"`
	// FailureMode is FailOpen or FailClose (default).
	FailureMode string `json:"failureMode,omitempty"`
}

// InferencePoolStatus is the observed state of an InferencePool, one entry per parent Gateway.
type InferencePoolStatus struct {
	// Parents are the Gateways that use the pool, with conditions from each.
	Parents []InferencePoolParentStatus `json:"parents,omitempty"`
}

// InferencePoolParentStatus is the status of an InferencePool as seen by one parent.
type InferencePoolParentStatus struct {
	// ParentRef is the parent, usually a Gateway.
	ParentRef ParentReference `json:"parentRef,omitzero"`
	// ControllerName is the controller that wrote this entry.
	ControllerName string `json:"controllerName,omitempty"`
	// Conditions are Accepted and ResolvedRefs.
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// ParentReference names the parent of an InferencePool, usually a Gateway.
type ParentReference struct {
	// Group defaults to gateway.networking.k8s.io.
	Group *string `json:"group,omitempty"`
	// Kind defaults to Gateway.
	Kind string `json:"kind,omitempty"`
	// Name of the parent.
	Name string `json:"name,omitempty"`
	// Namespace of the parent; empty is the pool's namespace.
	Namespace string `json:"namespace,omitempty"`
}

// InferenceObjective gives requests that name it a priority on a pool
// (inference.networking.x-k8s.io/v1alpha2). A request names it with the
// x-gateway-inference-objective header.
type InferenceObjective struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired state of the objective.
	Spec InferenceObjectiveSpec `json:"spec,omitzero"`
	// Status is written by controllers; Compile ignores it.
	Status InferenceObjectiveStatus `json:"status,omitzero"`
}

// InferenceObjectiveSpec is the desired state of an InferenceObjective.
type InferenceObjectiveSpec struct {
	// Priority orders requests under load; higher first, may be negative, nil is 0.
	Priority *int `json:"priority,omitempty"`
	// PoolRef is the InferencePool the objective applies to, in the same namespace.
	PoolRef PoolObjectReference `json:"poolRef,omitzero"`
}

// PoolObjectReference names an InferencePool in the referrer's namespace.
type PoolObjectReference struct {
	// Group defaults to inference.networking.k8s.io.
	Group string `json:"group,omitempty"`
	// Kind defaults to InferencePool.
	Kind string `json:"kind,omitempty"`
	// Name of the pool.
	Name string `json:"name,omitempty"`
}

// InferenceObjectiveStatus is the observed state of an InferenceObjective.
type InferenceObjectiveStatus struct {
	// Conditions written by controllers.
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}
