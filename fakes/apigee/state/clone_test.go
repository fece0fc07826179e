package state

import (
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/gatecheck/gatecheck/internal/apigeeapi"
)

// fill sets every field reachable from v to a non-zero value: two elements
// per slice, a value behind every pointer. It fails on kinds it does not
// know, so a new kind of field in apigeeapi gets a clone and a test.
func fill(t *testing.T, v reflect.Value, s string) {
	t.Helper()
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Int, reflect.Int64:
		v.SetInt(7)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(epoch))
			return
		}
		for i := range v.NumField() {
			fill(t, v.Field(i), s+"."+v.Type().Field(i).Name)
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := range 2 {
			fill(t, v.Index(i), s)
		}
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(t, v.Elem(), s)
	default:
		t.Fatalf("fill: %s has kind %s; teach clone.go and this test about it", s, v.Kind())
	}
}

// scribble overwrites everything reachable from v through slices and
// pointers.
func scribble(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("scribbled")
	case reflect.Int, reflect.Int64:
		v.SetInt(-1)
	case reflect.Bool:
		v.SetBool(false)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			return
		}
		for i := range v.NumField() {
			scribble(v.Field(i))
		}
	case reflect.Slice:
		for i := range v.Len() {
			scribble(v.Index(i))
		}
	case reflect.Pointer:
		if !v.IsNil() {
			scribble(v.Elem())
		}
	}
}

func checkClone[T any](t *testing.T, clone func(T) T) {
	t.Helper()
	var orig, want T
	fill(t, reflect.ValueOf(&orig).Elem(), "v")
	fill(t, reflect.ValueOf(&want).Elem(), "v")
	c := clone(orig)
	assert.Equal(t, want, c, "the clone equals the original")
	scribble(reflect.ValueOf(&c).Elem())
	assert.Equal(t, want, orig, "changing the clone leaves the original alone")
}

func TestClonesAreDeep(t *testing.T) {
	t.Parallel()
	checkClone(t, cloneDeveloper)
	checkClone(t, cloneApp)
	checkClone(t, cloneCredential)
	checkClone(t, cloneProduct)
	checkClone(t, cloneToken)
	checkClone(t, func(c *apigeeapi.Quota) *apigeeapi.Quota { return cloneQuota(c) })
}
