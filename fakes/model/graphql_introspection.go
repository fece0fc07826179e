package model

import (
	"fmt"
	"slices"
	"strings"

	"github.com/vektah/gqlparser/v2/ast"
)

// Introspection (__schema and __type) answers from the loaded schema, the
// built-in scalars, directives and introspection types included. Types and
// directives are listed by name. Fields whose names start with "__" are not
// listed, as the specification requires.

type introSchema struct{ schema *ast.Schema }

func (introSchema) gqlType() string { return "__Schema" }

func (s introSchema) resolve(_ *executor, name string, _ map[string]any) (any, error) {
	switch name {
	case "description":
		return optional(s.schema.Description), nil
	case "types":
		names := make([]string, 0, len(s.schema.Types))
		for n := range s.schema.Types {
			names = append(names, n)
		}
		slices.Sort(names)
		list := make([]any, len(names))
		for i, n := range names {
			list[i] = introType{schema: s.schema, def: s.schema.Types[n]}
		}
		return list, nil
	case "queryType":
		return introNamed(s.schema, s.schema.Query), nil
	case "mutationType":
		return introNamed(s.schema, s.schema.Mutation), nil
	case "subscriptionType":
		return introNamed(s.schema, s.schema.Subscription), nil
	case "directives":
		names := make([]string, 0, len(s.schema.Directives))
		for n := range s.schema.Directives {
			names = append(names, n)
		}
		slices.Sort(names)
		list := make([]any, len(names))
		for i, n := range names {
			list[i] = introDirective{schema: s.schema, d: s.schema.Directives[n]}
		}
		return list, nil
	}
	return nil, fmt.Errorf("internal error: no resolver for __Schema.%s", name)
}

// introNamed is the __Type of def, or nil.
func introNamed(schema *ast.Schema, def *ast.Definition) any {
	if def == nil {
		return nil
	}
	return introType{schema: schema, def: def}
}

// introTypeOf is the __Type of a type reference: a wrapper (NON_NULL, LIST)
// or a named type.
func introTypeOf(schema *ast.Schema, t *ast.Type) any {
	if t == nil {
		return nil
	}
	if t.NonNull || t.Elem != nil {
		return introType{schema: schema, ref: t}
	}
	return introNamed(schema, schema.Types[t.NamedType])
}

// introType is a __Type: a named type (def) or a wrapper (ref).
type introType struct {
	schema *ast.Schema
	def    *ast.Definition
	ref    *ast.Type
}

func (introType) gqlType() string { return "__Type" }

func (t introType) resolve(_ *executor, name string, args map[string]any) (any, error) {
	includeDeprecated, _ := args["includeDeprecated"].(bool)
	if t.def == nil {
		switch name {
		case "kind":
			if t.ref.NonNull {
				return "NON_NULL", nil
			}
			return "LIST", nil
		case "ofType":
			if t.ref.NonNull {
				inner := *t.ref
				inner.NonNull = false
				return introTypeOf(t.schema, &inner), nil
			}
			return introTypeOf(t.schema, t.ref.Elem), nil
		case "name", "description", "specifiedByURL", "fields", "interfaces", "possibleTypes",
			"enumValues", "inputFields", "isOneOf":
			return nil, nil
		}
		return nil, fmt.Errorf("internal error: no resolver for __Type.%s", name)
	}
	d := t.def
	switch name {
	case "kind":
		return string(d.Kind), nil
	case "name":
		return d.Name, nil
	case "description":
		return optional(d.Description), nil
	case "specifiedByURL":
		if s := d.Directives.ForName("specifiedBy"); s != nil && d.Kind == ast.Scalar {
			if a := s.Arguments.ForName("url"); a != nil && a.Value != nil {
				return a.Value.Raw, nil
			}
		}
		return nil, nil
	case "fields":
		if d.Kind != ast.Object && d.Kind != ast.Interface {
			return nil, nil
		}
		list := []any{}
		for _, f := range d.Fields {
			if strings.HasPrefix(f.Name, "__") {
				continue
			}
			if dep, _ := deprecation(f.Directives); dep && !includeDeprecated {
				continue
			}
			list = append(list, introField{schema: t.schema, f: f})
		}
		return list, nil
	case "interfaces":
		if d.Kind != ast.Object && d.Kind != ast.Interface {
			return nil, nil
		}
		list := []any{}
		for _, n := range d.Interfaces {
			if v := introNamed(t.schema, t.schema.Types[n]); v != nil {
				list = append(list, v)
			}
		}
		return list, nil
	case "possibleTypes":
		if !d.IsAbstractType() {
			return nil, nil
		}
		list := []any{}
		for _, p := range t.schema.GetPossibleTypes(d) {
			list = append(list, introType{schema: t.schema, def: p})
		}
		return list, nil
	case "enumValues":
		if d.Kind != ast.Enum {
			return nil, nil
		}
		list := []any{}
		for _, v := range d.EnumValues {
			if dep, _ := deprecation(v.Directives); dep && !includeDeprecated {
				continue
			}
			list = append(list, introEnumValue{v})
		}
		return list, nil
	case "inputFields":
		if d.Kind != ast.InputObject {
			return nil, nil
		}
		list := []any{}
		for _, f := range d.Fields {
			if dep, _ := deprecation(f.Directives); dep && !includeDeprecated {
				continue
			}
			list = append(list, introInputValue{schema: t.schema, name: f.Name, description: f.Description,
				typ: f.Type, defaultValue: f.DefaultValue, directives: f.Directives})
		}
		return list, nil
	case "ofType":
		return nil, nil
	case "isOneOf":
		if d.Kind != ast.InputObject {
			return nil, nil
		}
		return d.Directives.ForName("oneOf") != nil, nil
	}
	return nil, fmt.Errorf("internal error: no resolver for __Type.%s", name)
}

type introField struct {
	schema *ast.Schema
	f      *ast.FieldDefinition
}

func (introField) gqlType() string { return "__Field" }

func (f introField) resolve(_ *executor, name string, args map[string]any) (any, error) {
	switch name {
	case "name":
		return f.f.Name, nil
	case "description":
		return optional(f.f.Description), nil
	case "args":
		includeDeprecated, _ := args["includeDeprecated"].(bool)
		return introArgs(f.schema, f.f.Arguments, includeDeprecated), nil
	case "type":
		return introTypeOf(f.schema, f.f.Type), nil
	case "isDeprecated":
		dep, _ := deprecation(f.f.Directives)
		return dep, nil
	case "deprecationReason":
		_, reason := deprecation(f.f.Directives)
		return reason, nil
	}
	return nil, fmt.Errorf("internal error: no resolver for __Field.%s", name)
}

func introArgs(schema *ast.Schema, args ast.ArgumentDefinitionList, includeDeprecated bool) []any {
	list := []any{}
	for _, a := range args {
		if dep, _ := deprecation(a.Directives); dep && !includeDeprecated {
			continue
		}
		list = append(list, introInputValue{schema: schema, name: a.Name, description: a.Description,
			typ: a.Type, defaultValue: a.DefaultValue, directives: a.Directives})
	}
	return list
}

type introInputValue struct {
	schema       *ast.Schema
	name         string
	description  string
	typ          *ast.Type
	defaultValue *ast.Value
	directives   ast.DirectiveList
}

func (introInputValue) gqlType() string { return "__InputValue" }

func (v introInputValue) resolve(_ *executor, name string, _ map[string]any) (any, error) {
	switch name {
	case "name":
		return v.name, nil
	case "description":
		return optional(v.description), nil
	case "type":
		return introTypeOf(v.schema, v.typ), nil
	case "defaultValue":
		if v.defaultValue == nil {
			return nil, nil
		}
		return v.defaultValue.String(), nil
	case "isDeprecated":
		dep, _ := deprecation(v.directives)
		return dep, nil
	case "deprecationReason":
		_, reason := deprecation(v.directives)
		return reason, nil
	}
	return nil, fmt.Errorf("internal error: no resolver for __InputValue.%s", name)
}

type introEnumValue struct{ v *ast.EnumValueDefinition }

func (introEnumValue) gqlType() string { return "__EnumValue" }

func (v introEnumValue) resolve(_ *executor, name string, _ map[string]any) (any, error) {
	switch name {
	case "name":
		return v.v.Name, nil
	case "description":
		return optional(v.v.Description), nil
	case "isDeprecated":
		dep, _ := deprecation(v.v.Directives)
		return dep, nil
	case "deprecationReason":
		_, reason := deprecation(v.v.Directives)
		return reason, nil
	}
	return nil, fmt.Errorf("internal error: no resolver for __EnumValue.%s", name)
}

type introDirective struct {
	schema *ast.Schema
	d      *ast.DirectiveDefinition
}

func (introDirective) gqlType() string { return "__Directive" }

func (d introDirective) resolve(_ *executor, name string, args map[string]any) (any, error) {
	switch name {
	case "name":
		return d.d.Name, nil
	case "description":
		return optional(d.d.Description), nil
	case "isRepeatable":
		return d.d.IsRepeatable, nil
	case "locations":
		list := make([]any, len(d.d.Locations))
		for i, l := range d.d.Locations {
			list[i] = string(l)
		}
		return list, nil
	case "args":
		includeDeprecated, _ := args["includeDeprecated"].(bool)
		return introArgs(d.schema, d.d.Arguments, includeDeprecated), nil
	}
	return nil, fmt.Errorf("internal error: no resolver for __Directive.%s", name)
}

// deprecation reads @deprecated: whether it is there, and its reason (the
// directive's default when it names none).
func deprecation(dirs ast.DirectiveList) (bool, any) {
	d := dirs.ForName("deprecated")
	if d == nil {
		return false, nil
	}
	if a := d.Arguments.ForName("reason"); a != nil && a.Value != nil && a.Value.Kind != ast.NullValue {
		return true, a.Value.Raw
	}
	return true, "No longer supported"
}

// optional is s, or nil (null) when it is empty.
func optional(s string) any {
	if s == "" {
		return nil
	}
	return s
}
