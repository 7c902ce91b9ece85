package engine

import (
	"syscall"
	"testing"
	"time"
)

func TestParseRestartPolicy(t *testing.T) {
	for _, c := range []struct {
		in   string
		want RestartPolicy
		ok   bool
	}{
		{"no", RestartPolicy{}, true},
		{"always", RestartPolicy{Name: "always"}, true},
		{"unless-stopped", RestartPolicy{Name: "unless-stopped"}, true},
		{"on-failure", RestartPolicy{Name: "on-failure"}, true},
		{"on-failure:3", RestartPolicy{Name: "on-failure", MaxRetries: 3}, true},
		{"on-failure:0", RestartPolicy{Name: "on-failure"}, true},
		{"on-failure:-1", RestartPolicy{}, false},
		{"on-failure:x", RestartPolicy{}, false},
		{"always:2", RestartPolicy{}, false},
		{"no:1", RestartPolicy{}, false},
		{"", RestartPolicy{}, false},
		{"Always", RestartPolicy{}, false},
	} {
		got, err := ParseRestartPolicy(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseRestartPolicy(%q) = %+v, %v", c.in, got, err)
		}
		if c.ok && c.in != "on-failure:0" {
			if s := got.String(); s != c.in {
				t.Errorf("%q reads back as %q", c.in, s)
			}
		}
	}
}

// The policy decides by exit code and the restarts so far: on-failure:3
// allows exactly 3, always and unless-stopped any, no none.
func TestRestartPolicyRestarts(t *testing.T) {
	for _, c := range []struct {
		p              RestartPolicy
		code, restarts int
		want           bool
	}{
		{RestartPolicy{}, 1, 0, false},
		{RestartPolicy{Name: "always"}, 0, 100, true},
		{RestartPolicy{Name: "unless-stopped"}, 0, 0, true},
		{RestartPolicy{Name: "on-failure"}, 0, 0, false},
		{RestartPolicy{Name: "on-failure"}, 1, 1000, true},
		{RestartPolicy{Name: "on-failure", MaxRetries: 3}, 1, 2, true},
		{RestartPolicy{Name: "on-failure", MaxRetries: 3}, 1, 3, false},
		{RestartPolicy{Name: "on-failure", MaxRetries: 3}, 0, 0, false},
	} {
		if got := c.p.restarts(c.code, c.restarts); got != c.want {
			t.Errorf("%v.restarts(code %d, after %d) = %v", c.p, c.code, c.restarts, got)
		}
	}
}

// The back-off starts at 100 ms, doubles up to a minute, and starts over
// after a run of 10 s.
func TestRestartDelay(t *testing.T) {
	var d time.Duration
	var got []time.Duration
	for range 12 {
		d = restartDelay(d, time.Second)
		got = append(got, d)
	}
	want := []time.Duration{100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 60000, 60000}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("delays %v, want %v ms", got, want)
		}
	}
	if d := restartDelay(time.Minute, 10*time.Second); d != 100*time.Millisecond {
		t.Errorf("after a 10 s run: %v, want 100ms", d)
	}
}

func TestParseSignal(t *testing.T) {
	for _, c := range []struct {
		in   string
		want syscall.Signal
	}{{"TERM", syscall.SIGTERM}, {"SIGQUIT", syscall.SIGQUIT}, {"usr1", syscall.SIGUSR1}, {"9", syscall.SIGKILL}, {"0", 0}, {"65", 0}, {"SIGNOPE", 0}} {
		got, err := ParseSignal(c.in)
		if got != c.want || (err == nil) != (c.want != 0) {
			t.Errorf("ParseSignal(%q) = %v, %v", c.in, got, err)
		}
	}
}
