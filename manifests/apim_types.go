package manifests

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The Apigee Operator for Kubernetes kinds (apim.googleapis.com/v1), written
// here to decode the same YAML as the operator's CRDs (GA v1; the preview's
// v1alpha1 is not compatible and is not accepted). Field names follow Google's
// documentation of the operator; see ../shared/reference/apigee.md §1.

// APIMExtensionPolicy attaches Apigee to a Gateway as a traffic extension: all
// traffic through that Gateway goes through the Apigee runtime.
type APIMExtensionPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired state of the policy.
	Spec APIMExtensionPolicySpec `json:"spec,omitzero"`
	// Status is written by the operator; Compile ignores it.
	Status APIMStatus `json:"status,omitzero"`
}

// APIMExtensionPolicySpec is the desired state of an APIMExtensionPolicy.
type APIMExtensionPolicySpec struct {
	// ApigeeEnv is the Apigee environment; optional.
	ApigeeEnv string `json:"apigeeEnv,omitempty"`
	// Location is the runtime's location, for example "global".
	Location string `json:"location,omitempty"`
	// FailOpen lets traffic through when the runtime cannot be reached. Default false.
	FailOpen bool `json:"failOpen,omitempty"`
	// Timeout bounds each exchange with the runtime, for example "1000ms". Default 1000ms.
	Timeout string `json:"timeout,omitempty"`
	// DefaultSecurityEnabled adds the operator's default API-key check and
	// quota, which take effect once an APIProduct and an APIOperationSet exist.
	DefaultSecurityEnabled bool `json:"defaultSecurityEnabled,omitempty"`
	// TargetRef is the Gateway the policy attaches to.
	TargetRef APIMTargetRef `json:"targetRef,omitzero"`
}

// APIMTargetRef names the Gateway a policy attaches to.
type APIMTargetRef struct {
	Name      string `json:"name,omitempty"`
	Kind      string `json:"kind,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Group     string `json:"group,omitempty"`
}

// APIMStatus is the status the operator writes: STATE and ERRORMESSAGE in
// `kubectl get`.
type APIMStatus struct {
	// State is RUNNING, CREATED or Create_Update_Failed.
	State string `json:"state,omitempty"`
	// ErrorMessage says why the state is a failure.
	ErrorMessage string `json:"errorMessage,omitempty"`
	// Conditions are controller conditions, when written.
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// APIProduct is an Apigee API product, synced into the runtime.
type APIProduct struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired state of the product.
	Spec APIProductSpec `json:"spec,omitzero"`
	// Status is written by the operator; Compile ignores it.
	Status APIMStatus `json:"status,omitzero"`
}

// APIProductSpec is the desired state of an APIProduct.
type APIProductSpec struct {
	// Name is the product's name in Apigee; default metadata.name.
	Name        string `json:"name,omitempty"`
	DisplayName string `json:"displayName,omitempty"`
	Description string `json:"description,omitempty"`
	// ApprovalType is auto (keys approved at once) or manual. Default auto.
	ApprovalType string `json:"approvalType,omitempty"`
	// Attributes carry settings such as access (public, private, internal)
	// and tiers; at most 18.
	Attributes []APIMAttribute `json:"attributes,omitempty"`
	// EnforcementRefs name the APIMExtensionPolicies that enforce the product.
	EnforcementRefs []APIMObjectRef `json:"enforcementRefs,omitempty"`
	// Analytics is passed through to Apigee; unused by the simulation.
	Analytics *APIMAnalytics `json:"analytics,omitempty"`
}

// APIMAnalytics is a product's analytics setting.
type APIMAnalytics struct {
	Enabled bool `json:"enabled,omitempty"`
}

// APIMAttribute is a name/value pair.
type APIMAttribute struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// APIMObjectRef references another APIM object.
type APIMObjectRef struct {
	Name      string `json:"name,omitempty"`
	Kind      string `json:"kind,omitempty"`
	Group     string `json:"group,omitempty"`
	Namespace string `json:"namespace,omitempty"`
}

// APIOperationSet says which REST operations the products it references
// allow, with a quota.
type APIOperationSet struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired state of the operation set.
	Spec APIOperationSetSpec `json:"spec,omitzero"`
	// Status is written by the operator; Compile ignores it.
	Status APIMStatus `json:"status,omitzero"`
}

// APIOperationSetSpec is the desired state of an APIOperationSet.
type APIOperationSetSpec struct {
	// APIProductRefs are the products that grant these operations.
	APIProductRefs []APIMObjectRef `json:"apiProductRefs,omitempty"`
	// Quota limits requests per interval × timeUnit, per app.
	Quota *APIMQuota `json:"quota,omitempty"`
	// RESTOperations are the operations granted.
	RESTOperations []RESTOperation `json:"restOperations,omitempty"`
}

// APIMQuota is a request quota.
type APIMQuota struct {
	Limit    int64  `json:"limit,omitempty"`
	Interval int64  `json:"interval,omitempty"`
	TimeUnit string `json:"timeUnit,omitempty"`
}

// RESTOperation is one granted operation: a path pattern (with * and **) and
// its methods (empty for all).
type RESTOperation struct {
	Name    string   `json:"name,omitempty"`
	Path    string   `json:"path,omitempty"`
	Methods []string `json:"methods,omitempty"`
}
