package main

import (
	"strings"
	"testing"
)

// Every refused flag fails the run before anything starts, in one line
// that names the flag and its value, says why and what to use instead;
// every refusal in the table has a reason, an alternative, and its flag.
func TestRunRefusals(t *testing.T) {
	for _, r := range runRefusals {
		if r.why == "" || !strings.HasPrefix(r.instead, "use ") && !strings.HasPrefix(r.instead, "grant ") {
			t.Errorf("--%s: want a reason and an alternative: %+v", r.name, r)
		}
		args := []string{"run", "--" + r.name, "host", "img"}
		want := "run: --" + r.name + " host refused: " + r.why + "; " + r.instead
		if r.boolean {
			args = []string{"run", "--" + r.name, "img"}
			want = "run: --" + r.name + " refused: " + r.why + "; " + r.instead
		}
		_, err := execute(t, args...)
		if err == nil || err.Error() != want {
			t.Errorf("oak %s: error %v\nwant %q", strings.Join(args, " "), err, want)
		}
		for _, ok := range r.allowed {
			// Accepted: the run goes on and fails later, on the image.
			_, err := execute(t, "run", "--"+r.name, ok, "/nonexistent/image")
			if err == nil || strings.Contains(err.Error(), "refused") {
				t.Errorf("oak run --%s %s: %v; want it accepted", r.name, ok, err)
			}
		}
	}
	// A repeated flag is refused for any value not allowed.
	_, err := execute(t, "run", "--security-opt", "no-new-privileges", "--security-opt", "apparmor=unconfined", "img")
	if err == nil || !strings.Contains(err.Error(), "--security-opt apparmor=unconfined refused") {
		t.Errorf("a second --security-opt: %v", err)
	}
}
