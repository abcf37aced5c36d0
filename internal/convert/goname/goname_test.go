package goname

import "testing"

func TestExported(t *testing.T) {
	for in, want := range map[string]string{
		"my-app": "MyApp", "app": "App", "a.b_c": "ABC", "9lives": "Image9lives", "web2": "Web2", "": "Image",
	} {
		if got := Exported(in); got != want {
			t.Errorf("Exported(%q) = %q, want %q", in, got, want)
		}
	}
}
