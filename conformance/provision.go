package conformance

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/gatecheck/gatecheck/internal/apigeeapi"
)

// DefaultAPISource is the APIMExtensionPolicy products are enforced by unless
// --source says otherwise: the default topology's.
const DefaultAPISource = "inference-gateway-apim"

func cmdApigee(ts *testscript.TestScript, s *scenario, neg bool, args []string) error {
	if len(args) < 1 {
		return usagef("want product|app|key|developer|token ...")
	}
	c := s.target.Management()
	if c == nil {
		return fmt.Errorf("the target cannot provision (no management API)")
	}
	err := apigeeCommand(ts, s, c, args)
	switch {
	case err == nil && neg:
		return fmt.Errorf("apigee %s succeeded, want an error", strings.Join(args, " "))
	case err != nil && neg:
		if _, usage := err.(usageError); usage {
			return err
		}
		ts.Logf("apigee %s failed as expected: %v", strings.Join(args, " "), err)
		return nil
	}
	return err
}

func apigeeCommand(ts *testscript.TestScript, s *scenario, c *apigeeapi.Client, args []string) error {
	what, rest := args[0], args[1:]
	switch what {
	case "product":
		if len(rest) >= 2 && rest[0] == "create" {
			return productCreate(s, c, rest[1:])
		}
		return usagef("want product create NAME ...")
	case "app":
		if len(rest) >= 2 && rest[0] == "create" {
			return appCreate(ts, s, c, rest[1:])
		}
		if len(rest) == 1 && (rest[0] == "approve" || rest[0] == "revoke") {
			if err := s.needApp(); err != nil {
				return err
			}
			if rest[0] == "approve" {
				return c.ApproveApp(s.ctx, s.developer, s.app)
			}
			return c.RevokeApp(s.ctx, s.developer, s.app)
		}
		return usagef("want app create NAME ... | app approve | app revoke")
	case "key":
		if err := s.needApp(); err != nil {
			return err
		}
		switch {
		case len(rest) == 1 && rest[0] == "approve":
			return c.ApproveKey(s.ctx, s.developer, s.app, s.key)
		case len(rest) == 1 && rest[0] == "revoke":
			return c.RevokeKey(s.ctx, s.developer, s.app, s.key)
		case len(rest) == 2 && rest[0] == "add-product":
			_, err := c.AddKeyProducts(s.ctx, s.developer, s.app, s.key, []string{s.unique(rest[1])})
			return err
		case len(rest) == 2 && rest[0] == "remove-product":
			return c.RemoveKeyProduct(s.ctx, s.developer, s.app, s.key, s.unique(rest[1]))
		case len(rest) == 3 && rest[0] == "product" && rest[1] == "approve":
			return c.ApproveKeyProduct(s.ctx, s.developer, s.app, s.key, s.unique(rest[2]))
		case len(rest) == 3 && rest[0] == "product" && rest[1] == "revoke":
			return c.RevokeKeyProduct(s.ctx, s.developer, s.app, s.key, s.unique(rest[2]))
		}
		return usagef("want key approve|revoke | key add-product P | key remove-product P | key product approve|revoke P")
	case "developer":
		if err := s.needApp(); err != nil {
			return err
		}
		if len(rest) == 1 && (rest[0] == "activate" || rest[0] == "deactivate") {
			return c.SetDeveloperStatus(s.ctx, s.developer, rest[0] == "activate")
		}
		return usagef("want developer activate|deactivate")
	case "token":
		return token(ts, s, c, rest)
	}
	return usagef("%q: want product, app, key, developer or token", what)
}

func (s *scenario) needApp() error {
	if s.app == "" {
		return fmt.Errorf("no app yet: run apigee app create first")
	}
	return nil
}

var quotaRE = regexp.MustCompile(`^(\d+)/(\d*)(minute|hour|day|month)$`)

// parseQuota reads N/[K]UNIT: 5/minute, 100/2hour.
func parseQuota(flag, v string) (*apigeeapi.Quota, error) {
	m := quotaRE.FindStringSubmatch(v)
	if m == nil {
		return nil, usagef("--%s %q: want N/UNIT or N/KUNIT, for example 5/minute or 100/2hour", flag, v)
	}
	interval := m[2]
	if interval == "" {
		interval = "1"
	}
	return &apigeeapi.Quota{Limit: m[1], Interval: interval, TimeUnit: m[3]}, nil
}

func productCreate(s *scenario, c *apigeeapi.Client, args []string) error {
	fs := newFlags("apigee product create")
	var ops, attrs headerList
	fs.Var(&ops, "op", "operation PATH[:METHOD|METHOD] (repeatable; default every path)")
	models := fs.String("models", "", "models the product grants (an AI product), comma-separated")
	quota := fs.String("quota", "", "request quota N/[K]UNIT")
	tokenQuota := fs.String("token-quota", "", "LLM token quota N/[K]UNIT")
	scopes := fs.String("scopes", "", "OAuth scopes, comma-separated")
	fs.Var(&attrs, "attr", "attribute NAME=VALUE (repeatable)")
	approval := fs.String("approval", "auto", "auto or manual")
	source := fs.String("source", DefaultAPISource, "the APIMExtensionPolicy that enforces the product")
	name, flags := splitName(args)
	if err := fs.Parse(flags); err != nil {
		return usagef("%v", err)
	}
	if name == "" || fs.NArg() > 0 {
		return usagef("want product create NAME [flags]")
	}
	p := apigeeapi.APIProduct{Name: s.unique(name), DisplayName: name, ApprovalType: *approval}
	if *scopes != "" {
		p.Scopes = strings.Split(*scopes, ",")
	}
	for _, a := range attrs {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return usagef("--attr %q: want NAME=VALUE", a)
		}
		p.Attributes = append(p.Attributes, apigeeapi.Attribute{Name: k, Value: v})
	}
	if len(ops) == 0 {
		ops = headerList{"/**"}
	}
	var operations []apigeeapi.Operation
	for _, o := range ops {
		path, methods, _ := strings.Cut(o, ":")
		op := apigeeapi.Operation{Resource: path}
		if methods != "" {
			op.Methods = strings.Split(methods, "|")
		}
		operations = append(operations, op)
	}
	var q, tq *apigeeapi.Quota
	var err error
	if *quota != "" {
		if q, err = parseQuota("quota", *quota); err != nil {
			return err
		}
	}
	if *tokenQuota != "" {
		if tq, err = parseQuota("token-quota", *tokenQuota); err != nil {
			return err
		}
	}
	if *models != "" || tq != nil {
		ms := strings.Split(*models, ",")
		if *models == "" {
			ms = []string{"*"}
		}
		cfg := apigeeapi.LLMOperationConfig{APISource: *source, LLMTokenQuota: tq}
		for _, op := range operations {
			for _, m := range ms {
				cfg.LLMOperations = append(cfg.LLMOperations, apigeeapi.LLMOperation{Resource: op.Resource, Methods: op.Methods, Model: m})
			}
		}
		p.LLMOperationGroup = &apigeeapi.LLMOperationGroup{OperationConfigs: []apigeeapi.LLMOperationConfig{cfg}}
		if q != nil {
			p.OperationGroup = &apigeeapi.OperationGroup{OperationConfigs: []apigeeapi.OperationConfig{{APISource: *source, Operations: operations, Quota: q}}}
		}
	} else {
		p.OperationGroup = &apigeeapi.OperationGroup{OperationConfigs: []apigeeapi.OperationConfig{{APISource: *source, Operations: operations, Quota: q}}}
	}
	_, err = c.CreateProduct(s.ctx, p)
	return err
}

// splitName takes the first argument as a name when it is not a flag.
func splitName(args []string) (string, []string) {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return args[0], args[1:]
	}
	return "", args
}

func appCreate(ts *testscript.TestScript, s *scenario, c *apigeeapi.Client, args []string) error {
	fs := newFlags("apigee app create")
	products := fs.String("products", "", "products of the app, comma-separated (names as given to product create)")
	expires := fs.Duration("key-expires", 0, "the key's lifetime (default: never expires)")
	scopes := fs.String("scopes", "", "the app's scopes, comma-separated")
	name, flags := splitName(args)
	if err := fs.Parse(flags); err != nil {
		return usagef("%v", err)
	}
	if name == "" || fs.NArg() > 0 {
		return usagef("want app create NAME --products P,P")
	}
	if s.developer == "" {
		s.developer = "dev-" + s.id + "@gatecheck.test"
		if _, err := c.CreateDeveloper(s.ctx, apigeeapi.Developer{Email: s.developer, FirstName: "Scenario", LastName: s.id, UserName: "dev-" + s.id}); err != nil {
			return err
		}
	}
	app := apigeeapi.DeveloperApp{Name: s.unique(name)}
	if *products != "" {
		for _, p := range strings.Split(*products, ",") {
			app.APIProducts = append(app.APIProducts, s.unique(strings.TrimSpace(p)))
		}
	}
	if *scopes != "" {
		app.Scopes = strings.Split(*scopes, ",")
	}
	if *expires > 0 {
		app.KeyExpiresIn = strconv.FormatInt(expires.Milliseconds(), 10)
	}
	got, err := c.CreateApp(s.ctx, s.developer, app)
	if err != nil {
		return err
	}
	if len(got.Credentials) == 0 {
		return fmt.Errorf("app %s was created without a credential", app.Name)
	}
	s.app, s.key = got.Name, got.Credentials[0].ConsumerKey
	ts.Setenv("KEY", got.Credentials[0].ConsumerKey)
	ts.Setenv("SECRET", got.Credentials[0].ConsumerSecret)
	ts.Setenv("APP", got.Name)
	return nil
}

func token(ts *testscript.TestScript, s *scenario, c *apigeeapi.Client, args []string) error {
	fs := newFlags("apigee token")
	var scopes headerList
	fs.Var(&scopes, "scope", "a scope to ask for (repeatable)")
	if err := fs.Parse(args); err != nil {
		return usagef("%v", err)
	}
	key, secret := ts.Getenv("KEY"), ts.Getenv("SECRET")
	if key == "" || secret == "" {
		return fmt.Errorf("no $KEY and $SECRET: run apigee app create first")
	}
	tok, err := c.AccessToken(s.ctx, key, secret, scopes)
	if err != nil {
		return err
	}
	ts.Setenv("TOKEN", tok.AccessToken)
	return nil
}
