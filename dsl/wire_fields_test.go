package dsl

import (
	"reflect"
	"strings"
	"testing"
)

// Every field of a definition type has its counterpart in the wire form,
// so a field added to the API is not forgotten in the format (a bind's
// ContentKey once was). That the encoder and decoder copy each field is
// TestDefinitionsRoundTrip's job.
func TestWireCoversEveryField(t *testing.T) {
	for _, c := range []struct {
		api, wire any
		// renamed maps an API field to the wire field that carries it.
		renamed map[string]string
	}{
		{Image{}, wireImage{}, nil},
		{Step{}, wireStep{}, map[string]string{"Script": "Script"}},
		{ImportStep{}, wireImport{}, nil},
		{Bind{}, wireBind{}, map[string]string{"rawSource": "RawSource"}},
		{LocalSource{}, wireSource{}, map[string]string{"Want": "Kind"}},
		{URLSource{}, wireSource{}, nil},
		{ImageSource{}, wireSource{}, nil},
		{LayoutBase{}, wireBase{}, nil},
		{PullBase{}, wireBase{}, nil},
		{TarballBase{}, wireBase{}, map[string]string{"Remote": "SHA256"}},
	} {
		api, wire := reflect.TypeOf(c.api), reflect.TypeOf(c.wire)
		for i := range api.NumField() {
			name := api.Field(i).Name
			want, ok := c.renamed[name]
			if !ok {
				want = strings.ToUpper(name[:1]) + name[1:]
			}
			if _, found := wire.FieldByName(want); !found {
				t.Errorf("%s.%s has no counterpart %s.%s: add it to the definitions format (and bump DefinitionsFormat)", api.Name(), name, wire.Name(), want)
			}
		}
	}
}
