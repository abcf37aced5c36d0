package environ

import (
	"slices"
	"testing"
)

func TestMerge(t *testing.T) {
	for _, c := range []struct {
		env, vars, want []string
	}{
		{nil, nil, nil},
		{[]string{"A=1"}, nil, []string{"A=1"}},
		{nil, []string{"A=1"}, []string{"A=1"}},
		// Replaced in place, appended in order.
		{[]string{"PATH=/bin", "HOME=/root"}, []string{"HOME=/home/u", "B=2", "C=3"}, []string{"PATH=/bin", "HOME=/home/u", "B=2", "C=3"}},
		// A later variable of the same name wins, also over one just
		// appended.
		{[]string{"A=1"}, []string{"B=1", "B=2", "A=2"}, []string{"A=2", "B=2"}},
		// Only the name before the first '=' counts; a value may hold '='.
		{[]string{"A=x=y", "AB=1"}, []string{"A=z=w"}, []string{"A=z=w", "AB=1"}},
		// An entry without '=' is named by all of it.
		{[]string{"A", "B=1"}, []string{"A=1", "B"}, []string{"A=1", "B"}},
		// Empty values are values.
		{[]string{"A=1"}, []string{"A="}, []string{"A="}},
	} {
		env := slices.Clone(c.env)
		got := Merge(env, c.vars...)
		if !slices.Equal(got, c.want) {
			t.Errorf("Merge(%q, %q) = %q, want %q", c.env, c.vars, got, c.want)
		}
		if !slices.Equal(env, c.env) {
			t.Errorf("Merge(%q, %q) changed its argument to %q", c.env, c.vars, env)
		}
	}
}
