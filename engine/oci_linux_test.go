package engine

import (
	"slices"
	"testing"
)

func TestSplitEscaped(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{`lowerdir=/a:/b,upperdir=/u`, []string{"lowerdir=/a:/b", "upperdir=/u"}},
		{`lowerdir=/a\,b:/c,workdir=/w`, []string{"lowerdir=/a,b:/c", "workdir=/w"}},
		{``, []string{""}},
	} {
		if got := splitEscaped(c.in, ','); !slices.Equal(got, c.want) {
			t.Errorf("splitEscaped(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if got := unescapeMountinfo(`/a\040b/c`); got != "/a b/c" {
		t.Errorf("unescape: %q", got)
	}
}
