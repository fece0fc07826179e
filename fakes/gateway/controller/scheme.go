package controller

import (
	"encoding/json"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatecheck/gatecheck/manifests"
)

// Group versions of our own kinds.
var (
	InferenceGroupVersion          = schema.GroupVersion{Group: "inference.networking.k8s.io", Version: "v1"}
	InferenceObjectiveGroupVersion = schema.GroupVersion{Group: "inference.networking.x-k8s.io", Version: "v1alpha2"}
	APIMGroupVersion               = schema.GroupVersion{Group: "apim.googleapis.com", Version: "v1"}
)

// InferencePool is manifests.InferencePool as a runtime.Object.
type InferencePool struct {
	manifests.InferencePool
}

// InferencePoolList is a list of InferencePools.
type InferencePoolList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []InferencePool `json:"items"`
}

// InferenceObjective is manifests.InferenceObjective as a runtime.Object.
type InferenceObjective struct {
	manifests.InferenceObjective
}

// InferenceObjectiveList is a list of InferenceObjectives.
type InferenceObjectiveList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []InferenceObjective `json:"items"`
}

// APIMExtensionPolicy is manifests.APIMExtensionPolicy as a runtime.Object.
type APIMExtensionPolicy struct {
	manifests.APIMExtensionPolicy
}

// APIMExtensionPolicyList is a list of APIMExtensionPolicies.
type APIMExtensionPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []APIMExtensionPolicy `json:"items"`
}

// APIProduct is manifests.APIProduct as a runtime.Object.
type APIProduct struct {
	manifests.APIProduct
}

// APIProductList is a list of APIProducts.
type APIProductList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []APIProduct `json:"items"`
}

// APIOperationSet is manifests.APIOperationSet as a runtime.Object.
type APIOperationSet struct {
	manifests.APIOperationSet
}

// APIOperationSetList is a list of APIOperationSets.
type APIOperationSetList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []APIOperationSet `json:"items"`
}

// deepCopy copies v by a JSON round trip (see the package documentation).
func deepCopy[T any](v *T) *T {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("deep copy of %T: %v", v, err)) // our types always marshal
	}
	out := new(T)
	if err := json.Unmarshal(b, out); err != nil {
		panic(fmt.Sprintf("deep copy of %T: %v", v, err))
	}
	return out
}

// DeepCopyObject implements runtime.Object.
func (p *InferencePool) DeepCopyObject() runtime.Object { return deepCopy(p) }

// DeepCopyObject implements runtime.Object.
func (l *InferencePoolList) DeepCopyObject() runtime.Object { return deepCopy(l) }

// DeepCopyObject implements runtime.Object.
func (o *InferenceObjective) DeepCopyObject() runtime.Object { return deepCopy(o) }

// DeepCopyObject implements runtime.Object.
func (l *InferenceObjectiveList) DeepCopyObject() runtime.Object { return deepCopy(l) }

// DeepCopyObject implements runtime.Object.
func (p *APIMExtensionPolicy) DeepCopyObject() runtime.Object { return deepCopy(p) }

// DeepCopyObject implements runtime.Object.
func (l *APIMExtensionPolicyList) DeepCopyObject() runtime.Object { return deepCopy(l) }

// DeepCopyObject implements runtime.Object.
func (p *APIProduct) DeepCopyObject() runtime.Object { return deepCopy(p) }

// DeepCopyObject implements runtime.Object.
func (l *APIProductList) DeepCopyObject() runtime.Object { return deepCopy(l) }

// DeepCopyObject implements runtime.Object.
func (s *APIOperationSet) DeepCopyObject() runtime.Object { return deepCopy(s) }

// DeepCopyObject implements runtime.Object.
func (l *APIOperationSetList) DeepCopyObject() runtime.Object { return deepCopy(l) }

// AddToScheme registers our own kinds (InferencePool, InferenceObjective,
// APIMExtensionPolicy, APIProduct, APIOperationSet and their lists).
func AddToScheme(s *runtime.Scheme) error {
	add := func(gv schema.GroupVersion, objs ...runtime.Object) {
		s.AddKnownTypes(gv, objs...)
		metav1.AddToGroupVersion(s, gv)
	}
	add(InferenceGroupVersion, &InferencePool{}, &InferencePoolList{})
	add(InferenceObjectiveGroupVersion, &InferenceObjective{}, &InferenceObjectiveList{})
	add(APIMGroupVersion, &APIMExtensionPolicy{}, &APIMExtensionPolicyList{},
		&APIProduct{}, &APIProductList{}, &APIOperationSet{}, &APIOperationSetList{})
	return nil
}

// NewScheme is a scheme with every kind the controller reads: Kubernetes'
// own, Gateway API v1, and ours.
func NewScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, gatewayv1.Install, AddToScheme} {
		if err := add(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}
