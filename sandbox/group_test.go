package sandbox

import "testing"

func TestCheckGroupPath(t *testing.T) {
	for rel, ok := range map[string]bool{
		"": true, "f-a-0123456789ab": true, "f-a/f-b": true,
		"/f-a": false, "../x": false, "f-a/..": false, "f-a//f-b": false, "f-a/": false, ".": false, "a/./b": false,
	} {
		if err := checkGroupPath(rel); (err == nil) != ok {
			t.Errorf("checkGroupPath(%q) = %v, want ok=%v", rel, err, ok)
		}
	}
}
