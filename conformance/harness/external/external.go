// Package external is the conformance target for a deployment the suite does
// not run: a gateway URL, and either the management API of its Apigee
// organisation (so scenarios provision what they need) or a file of keys
// provisioned beforehand. Time cannot be moved and components cannot be
// stopped, so scenarios that need either are skipped, with that reason.
package external

import (
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/gatecheck/gatecheck/conformance/harness"
	"github.com/gatecheck/gatecheck/internal/apigeeapi"
)

// Options say where the deployment is.
type Options struct {
	// GatewayURL is the gateway's base URL. Required.
	GatewayURL string
	// ManagementURL, Org and Token reach the Apigee management API: for
	// Apigee X, https://apigee.googleapis.com, the organisation, and an
	// access token (gcloud auth print-access-token). Optional.
	ManagementURL string
	Org           string
	Token         string
	// TokenURL is where client-credentials tokens are minted, when that is
	// not ManagementURL/oauth/token (on Apigee X it is a proxy of yours).
	TokenURL string
	// CredentialsFile is a YAML file of pre-provisioned keys (see
	// Credentials). Optional.
	CredentialsFile string
	// Models are the model names the deployment serves, first the default.
	Models []string
	// HTTPClient is used for the management API; nil means a 30s-timeout client.
	HTTPClient *http.Client
}

// Credentials is the credentials file: keys provisioned beforehand, by name.
//
//	keys:
//	  default: 2Q4CUJ2UON7WZ6LS4AUY3P5CGLJBR36X
//	  revoked: ...
//	models: [qwen2.5-0.5b-instruct]
type Credentials struct {
	Keys   map[string]string `json:"keys"`
	Models []string          `json:"models,omitempty"`
}

// Target is an external deployment.
type Target struct {
	opts   Options
	client *apigeeapi.Client
	creds  Credentials
}

var _ harness.Target = (*Target)(nil)

// New checks the options and reads the credentials file.
func New(opts Options) (*Target, error) {
	if opts.GatewayURL == "" {
		return nil, fmt.Errorf("the external target needs the gateway URL (--gateway-url)")
	}
	if !strings.HasPrefix(opts.GatewayURL, "http://") && !strings.HasPrefix(opts.GatewayURL, "https://") {
		return nil, fmt.Errorf("gateway URL %q: want http:// or https://", opts.GatewayURL)
	}
	t := &Target{opts: opts}
	if opts.CredentialsFile != "" {
		b, err := os.ReadFile(opts.CredentialsFile)
		if err != nil {
			return nil, fmt.Errorf("credentials file: %w", err)
		}
		if err := yaml.UnmarshalStrict(b, &t.creds); err != nil {
			return nil, fmt.Errorf("credentials file %s: %w", opts.CredentialsFile, err)
		}
	}
	if opts.ManagementURL != "" {
		if opts.Org == "" || opts.Token == "" {
			return nil, fmt.Errorf("the management API needs an organisation and a token (--org, --admin-token)")
		}
		hc := opts.HTTPClient
		if hc == nil {
			hc = &http.Client{Timeout: 30 * time.Second}
		}
		t.client = apigeeapi.NewClient(opts.ManagementURL, opts.Org, opts.Token, hc)
		if opts.TokenURL != "" {
			t.client.TokenURL = opts.TokenURL
		}
	}
	return t, nil
}

// Name is "external".
func (t *Target) Name() string { return "external" }

// GatewayURL is the deployment's gateway.
func (t *Target) GatewayURL() string { return strings.TrimRight(t.opts.GatewayURL, "/") }

// Capabilities: provisioning when a management API was given; nothing else.
func (t *Target) Capabilities() harness.Capabilities {
	return harness.Capabilities{Provision: t.client != nil}
}

// Management is the management API client, or nil.
func (t *Target) Management() *apigeeapi.Client { return t.client }

// Keys are the keys of the credentials file.
func (t *Target) Keys() map[string]string { return t.creds.Keys }

// Models are the models given by option or in the credentials file.
func (t *Target) Models() []string {
	if len(t.opts.Models) > 0 {
		return t.opts.Models
	}
	return t.creds.Models
}

// AdvanceClock is not possible on a real deployment.
func (t *Target) AdvanceClock(context.Context, time.Duration) error {
	return fmt.Errorf("moving time: %w", harness.ErrUnsupported)
}

// Stop is not possible on a deployment the suite does not run.
func (t *Target) Stop(_ context.Context, c harness.Component) error {
	return fmt.Errorf("stopping %s: %w", c, harness.ErrUnsupported)
}

// Start is not possible on a deployment the suite does not run.
func (t *Target) Start(_ context.Context, c harness.Component) error {
	return fmt.Errorf("starting %s: %w", c, harness.ErrUnsupported)
}

// Trace is not available from a real Apigee through this kit.
func (t *Target) Trace(context.Context, string) ([]byte, error) {
	return nil, fmt.Errorf("traces: %w", harness.ErrUnsupported)
}

// WithTopology is not possible on a deployment the suite does not run.
func (t *Target) WithTopology(context.Context, fs.FS) (harness.Target, error) {
	return nil, fmt.Errorf("a topology of the scenario's own: %w", harness.ErrUnsupported)
}

// Close does nothing.
func (t *Target) Close() error { return nil }
