package model

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/vektah/gqlparser/v2/ast"
)

// The executor runs a validated operation over the server's data. It follows
// the specification's algorithms (CollectFields with @skip and @include,
// fields merged by response key, null propagation from non-null positions,
// mutation fields one after another) for the object types of
// GraphQLSchema and of introspection; interfaces and unions are handled by
// name, though the schema has none. It never panics on a validated document:
// a field it cannot resolve gets a field error.

// gqlObject is a value of a GraphQL object type.
type gqlObject interface {
	// gqlType names the object's type.
	gqlType() string
	// resolve returns the value of the field name given its coerced
	// arguments: nil, a string, int, int64, float64, bool, a gqlObject, or
	// a []any of those.
	resolve(e *executor, name string, args map[string]any) (any, error)
}

// executor runs one operation.
type executor struct {
	s      *Server
	ctx    context.Context
	schema *ast.Schema
	doc    *ast.QueryDocument
	vars   map[string]any // coerced variable values

	errs   []*gqlError // field errors, in the order they happened
	fields int         // fields resolved so far
	abort  *gqlError   // set when a limit stops execution: a request error
	cards  []modelCard
}

// fieldError is a resolver's error with the extensions its GraphQL error
// carries.
type fieldError struct {
	msg        string
	extensions map[string]any
}

func (e *fieldError) Error() string { return e.msg }

// apiFieldError is a failure in the shape of the OpenAI API as a field error:
// the same message, and extensions naming the HTTP status /v1/chat/completions
// would have answered with and its OpenAI error type.
func apiFieldError(status int, msg string) error {
	return &fieldError{msg: msg, extensions: map[string]any{"code": openAIErrorType(status), "status": status}}
}

// execute runs op and returns its data: an ordered object, or nil when a
// null reached the root. Field errors collect in e.errs; a limit sets
// e.abort.
func (e *executor) execute(op *ast.OperationDefinition) any {
	var root gqlObject
	var def *ast.Definition
	switch op.Operation {
	case ast.Query:
		root, def = queryRoot{}, e.schema.Query
	case ast.Mutation:
		root, def = mutationRoot{}, e.schema.Mutation
	}
	if root == nil || def == nil {
		e.abort = &gqlError{Message: fmt.Sprintf("This server does not support %s operations.", op.Operation), Locations: locate(op.Position)}
		return nil
	}
	data, ok := e.selectionSet(def, root, e.collect(def, op.SelectionSet), nil, 1)
	if !ok || e.abort != nil {
		return nil
	}
	return data
}

// fieldGroup is the fields of one response key, merged.
type fieldGroup struct {
	key    string
	fields []*ast.Field
}

// collect is the specification's CollectFields over one or more selection
// sets (those of merged fields): the fields that apply to an object of type
// def, grouped by response key in the order of their first appearance. A
// fragment is expanded at most once, so collection is linear in the
// document.
func (e *executor) collect(def *ast.Definition, sets ...ast.SelectionSet) []*fieldGroup {
	var groups []*fieldGroup
	index := map[string]*fieldGroup{}
	visited := map[string]bool{}
	var walk func(ast.SelectionSet)
	walk = func(sels ast.SelectionSet) {
		for _, sel := range sels {
			switch sel := sel.(type) {
			case *ast.Field:
				if !e.included(sel.Directives) {
					continue
				}
				key := sel.Alias
				if key == "" {
					key = sel.Name
				}
				g := index[key]
				if g == nil {
					g = &fieldGroup{key: key}
					index[key] = g
					groups = append(groups, g)
				}
				g.fields = append(g.fields, sel)
			case *ast.InlineFragment:
				if e.included(sel.Directives) && e.applies(def, sel.TypeCondition) {
					walk(sel.SelectionSet)
				}
			case *ast.FragmentSpread:
				if visited[sel.Name] || !e.included(sel.Directives) {
					continue
				}
				visited[sel.Name] = true
				if frag := e.doc.Fragments.ForName(sel.Name); frag != nil && e.applies(def, frag.TypeCondition) {
					walk(frag.SelectionSet)
				}
			}
		}
	}
	for _, s := range sets {
		walk(s)
	}
	return groups
}

// applies says whether a fragment with type condition cond applies to an
// object of type def.
func (e *executor) applies(def *ast.Definition, cond string) bool {
	if cond == "" || cond == def.Name {
		return true
	}
	c := e.schema.Types[cond]
	if c == nil || !c.IsAbstractType() {
		return false
	}
	for _, p := range e.schema.GetPossibleTypes(c) {
		if p.Name == def.Name {
			return true
		}
	}
	return false
}

// included evaluates @skip(if:) and @include(if:).
func (e *executor) included(dirs ast.DirectiveList) bool {
	for _, d := range dirs {
		if d.Name != "skip" && d.Name != "include" {
			continue
		}
		a := d.Arguments.ForName("if")
		if a == nil {
			continue
		}
		v, err := coerceLiteral(e.schema, a.Value, ast.NamedType("Boolean", nil), e.vars)
		b, _ := v.(bool)
		if err != nil {
			continue
		}
		if d.Name == "skip" && b || d.Name == "include" && !b {
			return false
		}
	}
	return true
}

// selectionSet resolves the grouped fields of obj, an object of type def,
// whose fields are at the given depth. ok is false when a non-null field
// came out null: the object itself is then null.
func (e *executor) selectionSet(def *ast.Definition, obj gqlObject, groups []*fieldGroup, path ast.Path, depth int) (*orderedObject, bool) {
	out := &orderedObject{}
	for _, g := range groups {
		if e.abort != nil {
			return nil, false
		}
		if e.fields++; e.fields > graphQLMaxFields {
			e.abort = &gqlError{Message: fmt.Sprintf("Query resolves too many fields: more than %d.", graphQLMaxFields)}
			return nil, false
		}
		f := g.fields[0]
		if depth > graphQLMaxDepth {
			e.abort = tooDeep(f, depth)
			return nil, false
		}
		fpath := extendPath(path, ast.PathName(g.key))
		if f.Name == "__typename" {
			out.add(g.key, def.Name)
			continue
		}
		fd := def.Fields.ForName(f.Name)
		if fd == nil {
			// Validation rules this out.
			e.fieldErr(fmt.Errorf("Cannot query field %q on type %q.", f.Name, def.Name), f, fpath)
			out.add(g.key, nil)
			continue
		}
		var val any
		args, err := e.arguments(fd.Arguments, f.Arguments)
		if err == nil {
			val, err = obj.resolve(e, f.Name, args)
		}
		if err != nil {
			e.fieldErr(err, f, fpath)
			if fd.Type.NonNull {
				return nil, false
			}
			out.add(g.key, nil)
			continue
		}
		v, ok := e.complete(fd.Type, g.fields, val, fpath, depth, def.Name+"."+fd.Name)
		if !ok || e.abort != nil {
			return nil, false
		}
		out.add(g.key, v)
	}
	return out, true
}

// complete is the specification's CompleteValue for a value of type t. ok is
// false when t is non-null and the value is null (the null propagates to the
// parent); a nullable position takes the null in.
func (e *executor) complete(t *ast.Type, fields []*ast.Field, val any, path ast.Path, depth int, field string) (any, bool) {
	if !t.NonNull {
		v, ok := e.completeNullable(t, fields, val, path, depth, field)
		if !ok {
			return nil, true
		}
		return v, true
	}
	inner := *t
	inner.NonNull = false
	v, ok := e.completeNullable(&inner, fields, val, path, depth, field)
	if !ok {
		return nil, false
	}
	if v == nil {
		if e.abort == nil {
			e.fieldErr(fmt.Errorf("Cannot return null for non-nullable field %s.", field), fields[0], path)
		}
		return nil, false
	}
	return v, true
}

// completeNullable completes val as the nullable type t; ok is false when a
// non-null position inside it (a list element, an object's field) came out
// null.
func (e *executor) completeNullable(t *ast.Type, fields []*ast.Field, val any, path ast.Path, depth int, field string) (any, bool) {
	if val == nil {
		return nil, true
	}
	if t.Elem != nil {
		list, ok := val.([]any)
		if !ok {
			e.fieldErr(fmt.Errorf("internal error: field %s resolved to %T, not a list", field, val), fields[0], path)
			return nil, true
		}
		out := make([]any, len(list))
		for i, item := range list {
			v, ok := e.complete(t.Elem, fields, item, extendPath(path, ast.PathIndex(i)), depth, field)
			if !ok {
				return nil, false
			}
			if e.abort != nil {
				return nil, false
			}
			out[i] = v
		}
		return out, true
	}
	def := e.schema.Types[t.NamedType]
	if def == nil {
		e.fieldErr(fmt.Errorf("internal error: unknown type %q", t.NamedType), fields[0], path)
		return nil, true
	}
	switch def.Kind {
	case ast.Scalar, ast.Enum:
		v, err := serializeLeaf(def, val)
		if err != nil {
			e.fieldErr(err, fields[0], path)
			return nil, true
		}
		return v, true
	case ast.Object, ast.Interface, ast.Union:
		obj, ok := val.(gqlObject)
		if !ok {
			e.fieldErr(fmt.Errorf("internal error: field %s resolved to %T, not an object", field, val), fields[0], path)
			return nil, true
		}
		if def.Kind != ast.Object {
			def = e.schema.Types[obj.gqlType()]
			if def == nil || def.Kind != ast.Object {
				e.fieldErr(fmt.Errorf("internal error: %q is not an object type", obj.gqlType()), fields[0], path)
				return nil, true
			}
		}
		sets := make([]ast.SelectionSet, len(fields))
		for i, f := range fields {
			sets[i] = f.SelectionSet
		}
		v, ok := e.selectionSet(def, obj, e.collect(def, sets...), path, depth+1)
		if !ok {
			return nil, false
		}
		return v, true
	default:
		e.fieldErr(fmt.Errorf("internal error: %s is not an output type", def.Name), fields[0], path)
		return nil, true
	}
}

// serializeLeaf turns a resolved scalar or enum value into its JSON value.
func serializeLeaf(def *ast.Definition, val any) (any, error) {
	if def.Kind == ast.Enum {
		if s, ok := val.(string); ok && def.EnumValues.ForName(s) != nil {
			return s, nil
		}
		return nil, fmt.Errorf("Enum %q cannot represent value: %v", def.Name, val)
	}
	switch def.Name {
	case "Int":
		var n int64
		switch v := val.(type) {
		case int:
			n = int64(v)
		case int64:
			n = v
		default:
			return nil, fmt.Errorf("Int cannot represent non-integer value: %v", val)
		}
		if n < math.MinInt32 || n > math.MaxInt32 {
			return nil, fmt.Errorf("Int cannot represent non 32-bit signed integer value: %d", n)
		}
		return n, nil
	case "Float":
		switch v := val.(type) {
		case float64:
			return v, nil
		case int:
			return float64(v), nil
		}
		return nil, fmt.Errorf("Float cannot represent non numeric value: %v", val)
	case "String", "ID":
		if s, ok := val.(string); ok {
			return s, nil
		}
		return nil, fmt.Errorf("%s cannot represent value: %v", def.Name, val)
	case "Boolean":
		if b, ok := val.(bool); ok {
			return b, nil
		}
		return nil, fmt.Errorf("Boolean cannot represent a non boolean value: %v", val)
	default:
		return val, nil
	}
}

// fieldErr records a field error at f and path.
func (e *executor) fieldErr(err error, f *ast.Field, path ast.Path) {
	ge := &gqlError{Message: err.Error(), Locations: locate(f.Position), Path: path}
	var fe *fieldError
	if errors.As(err, &fe) {
		ge.Extensions = fe.extensions
	}
	e.errs = append(e.errs, ge)
}

// extendPath returns a new path: p and then el.
func extendPath(p ast.Path, el ast.PathElement) ast.Path {
	q := make(ast.Path, len(p)+1)
	copy(q, p)
	q[len(p)] = el
	return q
}

// arguments coerces a field's arguments (CoerceArgumentValues).
func (e *executor) arguments(defs ast.ArgumentDefinitionList, args ast.ArgumentList) (map[string]any, error) {
	out := make(map[string]any, len(defs))
	for _, d := range defs {
		var v any
		has := false
		if a := args.ForName(d.Name); a != nil {
			if a.Value.Kind == ast.Variable {
				v, has = e.vars[a.Value.Raw]
			} else {
				var err error
				if v, err = coerceLiteral(e.schema, a.Value, d.Type, e.vars); err != nil {
					return nil, fmt.Errorf("Argument %q has invalid value %s: %v", d.Name, a.Value.String(), err)
				}
				has = true
			}
		}
		if !has && d.DefaultValue != nil {
			var err error
			if v, err = coerceLiteral(e.schema, d.DefaultValue, d.Type, nil); err != nil {
				return nil, fmt.Errorf("Argument %q has an invalid default value: %v", d.Name, err)
			}
			has = true
		}
		if !has {
			if d.Type.NonNull {
				return nil, fmt.Errorf("Argument %q of required type %q was not provided.", d.Name, d.Type.String())
			}
			continue
		}
		if v == nil && d.Type.NonNull {
			return nil, fmt.Errorf("Argument %q of non-null type %q must not be null.", d.Name, d.Type.String())
		}
		out[d.Name] = v
	}
	return out, nil
}

// coerceLiteral coerces a literal value of the document (with variables
// already coerced in vars) to type t: int64 for Int, float64 for Float,
// string for String, ID and enums, bool for Boolean, []any for lists. A
// variable that has no value is null.
func coerceLiteral(schema *ast.Schema, v *ast.Value, t *ast.Type, vars map[string]any) (any, error) {
	if v == nil || v.Kind == ast.Variable {
		if v == nil {
			return nil, nil
		}
		val := vars[v.Raw]
		if val == nil && t.NonNull {
			return nil, fmt.Errorf("expected a non-null %s", t.String())
		}
		return val, nil
	}
	if v.Kind == ast.NullValue {
		if t.NonNull {
			return nil, fmt.Errorf("expected a non-null %s", t.String())
		}
		return nil, nil
	}
	if t.Elem != nil {
		if v.Kind != ast.ListValue {
			one, err := coerceLiteral(schema, v, t.Elem, vars)
			if err != nil {
				return nil, err
			}
			return []any{one}, nil
		}
		out := make([]any, 0, len(v.Children))
		for _, c := range v.Children {
			item, err := coerceLiteral(schema, c.Value, t.Elem, vars)
			if err != nil {
				return nil, err
			}
			out = append(out, item)
		}
		return out, nil
	}
	def := schema.Types[t.NamedType]
	if def == nil {
		return nil, fmt.Errorf("unknown type %q", t.NamedType)
	}
	switch {
	case def.Kind == ast.Enum:
		if v.Kind == ast.EnumValue && def.EnumValues.ForName(v.Raw) != nil {
			return v.Raw, nil
		}
	case def.Kind != ast.Scalar:
		return nil, fmt.Errorf("input type %s is not supported", def.Name)
	case def.Name == "Int":
		if v.Kind == ast.IntValue {
			if n, err := strconv.ParseInt(v.Raw, 10, 32); err == nil {
				return n, nil
			}
			return nil, fmt.Errorf("Int cannot represent non 32-bit signed integer value: %s", v.Raw)
		}
	case def.Name == "Float":
		if v.Kind == ast.IntValue || v.Kind == ast.FloatValue {
			if f, err := strconv.ParseFloat(v.Raw, 64); err == nil && !math.IsInf(f, 0) {
				return f, nil
			}
		}
	case def.Name == "String":
		if v.Kind == ast.StringValue || v.Kind == ast.BlockValue {
			return v.Raw, nil
		}
	case def.Name == "ID":
		if v.Kind == ast.StringValue || v.Kind == ast.BlockValue || v.Kind == ast.IntValue {
			return v.Raw, nil
		}
	case def.Name == "Boolean":
		if v.Kind == ast.BooleanValue {
			return v.Raw == "true", nil
		}
	default:
		return v.Value(vars)
	}
	return nil, fmt.Errorf("%s cannot represent %s", def.Name, v.String())
}

// coerceVariables is the specification's CoerceVariableValues: the values
// of the operation's variables, from the request's JSON (numbers as
// json.Number), defaults filled in.
func coerceVariables(schema *ast.Schema, op *ast.OperationDefinition, raw map[string]any) (map[string]any, []*gqlError) {
	out := map[string]any{}
	var errs []*gqlError
	for _, vd := range op.VariableDefinitions {
		name, t := vd.Variable, vd.Type
		val, has := raw[name]
		switch {
		case !has && vd.DefaultValue != nil:
			v, err := coerceLiteral(schema, vd.DefaultValue, t, nil)
			if err != nil {
				errs = append(errs, &gqlError{Message: fmt.Sprintf("Variable \"$%s\" has an invalid default value: %v", name, err), Locations: locate(vd.Position)})
				continue
			}
			out[name] = v
		case !has && t.NonNull:
			errs = append(errs, &gqlError{Message: fmt.Sprintf("Variable \"$%s\" of required type %q was not provided.", name, t.String()), Locations: locate(vd.Position)})
		case !has:
		case val == nil && t.NonNull:
			errs = append(errs, &gqlError{Message: fmt.Sprintf("Variable \"$%s\" of non-null type %q must not be null.", name, t.String()), Locations: locate(vd.Position)})
		default:
			v, where, err := coerceInput(schema, t, val, "")
			if err != nil {
				msg := fmt.Sprintf("Variable \"$%s\" got invalid value %s", name, jsonText(val))
				if where != "" {
					msg += fmt.Sprintf(" at \"%s%s\"", name, where)
				}
				errs = append(errs, &gqlError{Message: msg + "; " + err.Error(), Locations: locate(vd.Position)})
				continue
			}
			out[name] = v
		}
	}
	return out, errs
}

// coerceInput coerces a JSON value to the input type t, saying where inside
// the value (as "[1]") it failed.
func coerceInput(schema *ast.Schema, t *ast.Type, val any, where string) (any, string, error) {
	if val == nil {
		if t.NonNull {
			return nil, where, fmt.Errorf("Expected non-nullable type %q not to be null.", t.String())
		}
		return nil, where, nil
	}
	if t.Elem != nil {
		list, ok := val.([]any)
		if !ok {
			one, w, err := coerceInput(schema, t.Elem, val, where)
			if err != nil {
				return nil, w, err
			}
			return []any{one}, where, nil
		}
		out := make([]any, len(list))
		for i, item := range list {
			v, w, err := coerceInput(schema, t.Elem, item, where+"["+strconv.Itoa(i)+"]")
			if err != nil {
				return nil, w, err
			}
			out[i] = v
		}
		return out, where, nil
	}
	def := schema.Types[t.NamedType]
	if def == nil {
		return nil, where, fmt.Errorf("Unknown type %q.", t.NamedType)
	}
	text := jsonText(val)
	if def.Kind == ast.Enum {
		if s, ok := val.(string); ok && def.EnumValues.ForName(s) != nil {
			return s, where, nil
		}
		return nil, where, fmt.Errorf("Value %s does not exist in %q enum.", text, def.Name)
	}
	if def.Kind != ast.Scalar {
		return nil, where, fmt.Errorf("Input type %s is not supported.", def.Name)
	}
	switch def.Name {
	case "Int":
		num, ok := val.(json.Number)
		if !ok {
			return nil, where, fmt.Errorf("Int cannot represent non-integer value: %s", text)
		}
		f, err := strconv.ParseFloat(string(num), 64)
		if err != nil || f != math.Trunc(f) || math.IsInf(f, 0) {
			return nil, where, fmt.Errorf("Int cannot represent non-integer value: %s", text)
		}
		if f < math.MinInt32 || f > math.MaxInt32 {
			return nil, where, fmt.Errorf("Int cannot represent non 32-bit signed integer value: %s", text)
		}
		return int64(f), where, nil
	case "Float":
		if num, ok := val.(json.Number); ok {
			if f, err := strconv.ParseFloat(string(num), 64); err == nil && !math.IsInf(f, 0) {
				return f, where, nil
			}
		}
		return nil, where, fmt.Errorf("Float cannot represent non numeric value: %s", text)
	case "String":
		if s, ok := val.(string); ok {
			return s, where, nil
		}
		return nil, where, fmt.Errorf("String cannot represent a non string value: %s", text)
	case "Boolean":
		if b, ok := val.(bool); ok {
			return b, where, nil
		}
		return nil, where, fmt.Errorf("Boolean cannot represent a non boolean value: %s", text)
	case "ID":
		switch v := val.(type) {
		case string:
			return v, where, nil
		case json.Number:
			if _, err := strconv.ParseInt(string(v), 10, 64); err == nil {
				return string(v), where, nil
			}
		}
		return nil, where, fmt.Errorf("ID cannot represent value: %s", text)
	default:
		return val, where, nil
	}
}

// jsonText is v as JSON, for messages.
func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// checkLimits walks op before it runs, fragments expanded as CollectFields
// expands them, and refuses it when a field is nested deeper than
// graphQLMaxDepth or the selections exceed graphQLMaxSelections. It also
// refuses a fragment that spreads itself, which validation already rejects.
// The walk stops at the first limit, so it costs at most
// graphQLMaxSelections steps however fragments multiply.
func (e *executor) checkLimits(op *ast.OperationDefinition) *gqlError {
	count := 0
	active := map[string]bool{}
	var walk func(sels ast.SelectionSet, depth int, visited map[string]bool) *gqlError
	walk = func(sels ast.SelectionSet, depth int, visited map[string]bool) *gqlError {
		for _, sel := range sels {
			if count++; count > graphQLMaxSelections {
				return &gqlError{Message: fmt.Sprintf("Query is too large: more than %d selections once fragments are expanded.", graphQLMaxSelections),
					Locations: locate(sel.GetPosition())}
			}
			switch sel := sel.(type) {
			case *ast.Field:
				if !e.included(sel.Directives) {
					continue
				}
				if depth > graphQLMaxDepth {
					return tooDeep(sel, depth)
				}
				if len(sel.SelectionSet) > 0 {
					if err := walk(sel.SelectionSet, depth+1, map[string]bool{}); err != nil {
						return err
					}
				}
			case *ast.InlineFragment:
				if e.included(sel.Directives) {
					if err := walk(sel.SelectionSet, depth, visited); err != nil {
						return err
					}
				}
			case *ast.FragmentSpread:
				if visited[sel.Name] || !e.included(sel.Directives) {
					continue
				}
				visited[sel.Name] = true
				if active[sel.Name] {
					return &gqlError{Message: fmt.Sprintf("Cannot spread fragment %q within itself.", sel.Name), Locations: locate(sel.Position)}
				}
				frag := e.doc.Fragments.ForName(sel.Name)
				if frag == nil {
					continue
				}
				active[sel.Name] = true
				err := walk(frag.SelectionSet, depth, visited)
				delete(active, sel.Name)
				if err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk(op.SelectionSet, 1, map[string]bool{})
}

func tooDeep(f *ast.Field, depth int) *gqlError {
	return &gqlError{Message: fmt.Sprintf("Query is too deep: field %q is at depth %d, and this server allows %d.", f.Name, depth, graphQLMaxDepth),
		Locations: locate(f.Position)}
}

// orderedObject is a JSON object that keeps its keys in insertion order, as
// GraphQL responses must.
type orderedObject struct {
	keys []string
	vals []any
}

func (o *orderedObject) add(k string, v any) {
	o.keys = append(o.keys, k)
	o.vals = append(o.vals, v)
}

func (o *orderedObject) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		b.Write(kb)
		b.WriteByte(':')
		vb, err := json.Marshal(o.vals[i])
		if err != nil {
			return nil, err
		}
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// The server's types.

type queryRoot struct{}

func (queryRoot) gqlType() string { return "Query" }

func (queryRoot) resolve(e *executor, name string, args map[string]any) (any, error) {
	switch name {
	case "models":
		cards := e.modelCards()
		list := make([]any, len(cards))
		for i := range cards {
			list[i] = gqlModel{card: cards[i]}
		}
		return list, nil
	case "model":
		id, _ := args["id"].(string)
		for _, c := range e.modelCards() {
			if c.ID == id {
				return gqlModel{card: c}, nil
			}
		}
		return nil, nil
	case "server":
		st := e.s.sched.state()
		return gqlServer{pod: e.s.cfg.PodName, namespace: e.s.cfg.PodNamespace, running: st.running, waiting: st.waiting}, nil
	case "__schema":
		return introSchema{e.schema}, nil
	case "__type":
		n, _ := args["name"].(string)
		if def := e.schema.Types[n]; def != nil {
			return introType{schema: e.schema, def: def}, nil
		}
		return nil, nil
	}
	return nil, fmt.Errorf("internal error: no resolver for Query.%s", name)
}

// modelCards returns the server's models, listed once per request.
func (e *executor) modelCards() []modelCard {
	if e.cards == nil {
		e.cards = e.s.modelCards()
	}
	return e.cards
}

type gqlModel struct{ card modelCard }

func (gqlModel) gqlType() string { return "Model" }

func (m gqlModel) resolve(e *executor, name string, _ map[string]any) (any, error) {
	switch name {
	case "id":
		return m.card.ID, nil
	case "ownedBy":
		return m.card.OwnedBy, nil
	case "parent":
		if m.card.Parent == nil {
			return nil, nil
		}
		return *m.card.Parent, nil
	case "adapters":
		list := []any{}
		for _, c := range e.modelCards() {
			if c.Parent != nil && *c.Parent == m.card.ID {
				list = append(list, gqlModel{card: c})
			}
		}
		return list, nil
	}
	return nil, fmt.Errorf("internal error: no resolver for Model.%s", name)
}

type gqlServer struct {
	pod, namespace   string
	running, waiting int
}

func (gqlServer) gqlType() string { return "Server" }

func (s gqlServer) resolve(_ *executor, name string, _ map[string]any) (any, error) {
	switch name {
	case "pod":
		return s.pod, nil
	case "namespace":
		return s.namespace, nil
	case "running":
		return s.running, nil
	case "waiting":
		return s.waiting, nil
	}
	return nil, fmt.Errorf("internal error: no resolver for Server.%s", name)
}

type mutationRoot struct{}

func (mutationRoot) gqlType() string { return "Mutation" }

func (mutationRoot) resolve(e *executor, name string, args map[string]any) (any, error) {
	if name == "chat" {
		return e.s.graphQLChat(e.ctx, args)
	}
	return nil, fmt.Errorf("internal error: no resolver for Mutation.%s", name)
}

// graphQLChat runs the chat mutation: the generation POST
// /v1/chat/completions runs for one user message whose content is prompt
// (the same job checks, prompt rendering, token counts and seed), holding a
// running slot until its last token, without streaming.
func (s *Server) graphQLChat(ctx context.Context, args map[string]any) (any, error) {
	arrived := time.Now()
	model, _ := args["model"].(string)
	prompt, _ := args["prompt"].(string)
	var maxTokens *int
	if v, ok := args["maxTokens"].(int64); ok {
		n := int(v)
		maxTokens = &n
	}
	var seed *int64
	if v, ok := args["seed"].(int64); ok {
		seed = &v
	}
	j, f := s.newOpenAIJob(model, maxTokens, seed, nil, "user: "+prompt+"\n", prompt, CountTokens(prompt))
	if f != nil {
		return nil, apiFieldError(f.status, f.msg)
	}
	ans, rng := s.plan(j)
	var text strings.Builder
	_, err := s.run(ctx, j, ans, rng, arrived, func(tok string) error {
		text.WriteString(tok)
		return nil
	})
	if err != nil {
		status, msg, ok := runError(err)
		if !ok {
			status, msg = http.StatusRequestTimeout, "the request ended before the generation: "+err.Error()
		}
		return nil, apiFieldError(status, msg)
	}
	return gqlCompletion{model: j.gen.model, text: text.String(), promptTokens: j.promptTokens,
		completionTokens: len(ans.tokens), finishReason: ans.finish}, nil
}

type gqlCompletion struct {
	model, text                    string
	promptTokens, completionTokens int
	finishReason                   string
}

func (gqlCompletion) gqlType() string { return "Completion" }

func (c gqlCompletion) resolve(_ *executor, name string, _ map[string]any) (any, error) {
	switch name {
	case "model":
		return c.model, nil
	case "text":
		return c.text, nil
	case "promptTokens":
		return c.promptTokens, nil
	case "completionTokens":
		return c.completionTokens, nil
	case "totalTokens":
		return c.promptTokens + c.completionTokens, nil
	case "finishReason":
		return c.finishReason, nil
	}
	return nil, fmt.Errorf("internal error: no resolver for Completion.%s", name)
}
