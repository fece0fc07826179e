package mgmt

import (
	"errors"
	"net/http"
	"strings"

	"github.com/gatecheck/gatecheck/fakes/apigee/state"
	"github.com/gatecheck/gatecheck/internal/apigeeapi"
)

// maxAttributes is Apigee's limit of custom attributes on a developer, app
// or product.
const maxAttributes = 18

// validateDeveloper checks what Apigee requires of a developer
// (https://cloud.google.com/apigee/docs/reference/apis/apigee/rest/v1/organizations.developers#Developer).
func validateDeveloper(d apigeeapi.Developer) error {
	switch {
	case d.Email == "":
		return invalid("email: required")
	case !strings.Contains(d.Email, "@") || strings.ContainsAny(d.Email, "/ \t\r\n\x00"):
		return invalid("email: %q is not an email address", d.Email)
	case d.FirstName == "":
		return invalid("firstName: required")
	case d.LastName == "":
		return invalid("lastName: required")
	case d.UserName == "":
		return invalid("userName: required")
	}
	return validateAttributes("attributes", d.Attributes)
}

func validateAttributes(field string, attrs []apigeeapi.Attribute) error {
	if len(attrs) > maxAttributes {
		return invalid("%s: %d attributes, at most %d are allowed", field, len(attrs), maxAttributes)
	}
	for i, at := range attrs {
		if at.Name == "" {
			return invalid("%s[%d].name: required", field, i)
		}
	}
	return nil
}

// developerWithApps fills the output-only list of the developer's app names.
func (a *API) developerWithApps(r *http.Request, d apigeeapi.Developer) (apigeeapi.Developer, error) {
	apps, err := a.store.ListApps(r.Context(), d.Email)
	if err != nil {
		return d, err
	}
	d.Apps = nil
	for _, app := range apps {
		d.Apps = append(d.Apps, app.Name)
	}
	return d, nil
}

func (a *API) createDeveloper(r *http.Request) (int, any, error) {
	var d apigeeapi.Developer
	if err := decode(r, &d); err != nil {
		return 0, nil, err
	}
	if err := validateDeveloper(d); err != nil {
		return 0, nil, err
	}
	a.writes.Lock()
	defer a.writes.Unlock()
	ctx := r.Context()
	if _, err := a.store.GetDeveloper(ctx, d.Email); err == nil {
		return 0, nil, conflict("developer %q already exists", d.Email)
	} else if !errors.Is(err, state.ErrNotFound) {
		return 0, nil, err
	}
	id, err := a.uuid()
	if err != nil {
		return 0, nil, err
	}
	now := a.now()
	// developerId, status, the timestamps, apps and organizationName are
	// output only: whatever the request says is replaced.
	d.DeveloperID, d.Status, d.CreatedAt, d.LastModifiedAt = id, "active", now, now
	d.OrganizationName, d.Apps = a.org, nil
	if err := a.store.PutDeveloper(ctx, d); err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, d, nil
}

func (a *API) listDevelopers(r *http.Request) (int, any, error) {
	full, err := expand(r)
	if err != nil {
		return 0, nil, err
	}
	devs, err := a.store.ListDevelopers(r.Context())
	if err != nil {
		return 0, nil, err
	}
	out := apigeeapi.Developers{Developer: []apigeeapi.Developer{}}
	for _, d := range devs {
		if !full {
			// Apigee lists developers by email unless asked to expand.
			out.Developer = append(out.Developer, apigeeapi.Developer{Email: d.Email})
			continue
		}
		if d, err = a.developerWithApps(r, d); err != nil {
			return 0, nil, err
		}
		out.Developer = append(out.Developer, d)
	}
	return http.StatusOK, out, nil
}

func (a *API) getDeveloper(r *http.Request) (int, any, error) {
	d, err := a.store.GetDeveloper(r.Context(), r.PathValue("email"))
	if err != nil {
		return 0, nil, err
	}
	d, err = a.developerWithApps(r, d)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, d, nil
}

// updateDeveloper replaces the developer's details with the request's, as
// Apigee's PUT does; the email (the store's key) cannot change.
func (a *API) updateDeveloper(r *http.Request) (int, any, error) {
	var in apigeeapi.Developer
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	email := r.PathValue("email")
	if in.Email == "" {
		in.Email = email
	}
	if !strings.EqualFold(in.Email, email) {
		return 0, nil, invalid("email: %q differs from the developer in the path, %q; gatecheck cannot change a developer's email", in.Email, email)
	}
	if err := validateDeveloper(in); err != nil {
		return 0, nil, err
	}
	a.writes.Lock()
	defer a.writes.Unlock()
	ctx := r.Context()
	old, err := a.store.GetDeveloper(ctx, email)
	if err != nil {
		return 0, nil, err
	}
	in.Email = old.Email
	in.DeveloperID, in.Status, in.CreatedAt, in.OrganizationName = old.DeveloperID, old.Status, old.CreatedAt, old.OrganizationName
	in.LastModifiedAt = a.now()
	if err := a.store.PutDeveloper(ctx, in); err != nil {
		return 0, nil, err
	}
	d, err := a.developerWithApps(r, in)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, d, nil
}

// setDeveloperStatus is Apigee's developers.setDeveloperStatus: POST with
// ?action=active|inactive, 204.
func (a *API) setDeveloperStatus(r *http.Request) (int, any, error) {
	act, err := action(r, "active", "inactive")
	if err != nil {
		return 0, nil, err
	}
	a.writes.Lock()
	defer a.writes.Unlock()
	ctx := r.Context()
	d, err := a.store.GetDeveloper(ctx, r.PathValue("email"))
	if err != nil {
		return 0, nil, err
	}
	d.Status, d.LastModifiedAt = act, a.now()
	if err := a.store.PutDeveloper(ctx, d); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

// deleteDeveloper deletes the developer and their apps and answers with the
// developer, as Apigee does.
func (a *API) deleteDeveloper(r *http.Request) (int, any, error) {
	a.writes.Lock()
	defer a.writes.Unlock()
	ctx := r.Context()
	d, err := a.store.GetDeveloper(ctx, r.PathValue("email"))
	if err != nil {
		return 0, nil, err
	}
	if d, err = a.developerWithApps(r, d); err != nil {
		return 0, nil, err
	}
	if err := a.store.DeleteDeveloper(ctx, d.Email); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, d, nil
}
