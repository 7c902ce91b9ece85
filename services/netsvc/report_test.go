package netsvc

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestReporterRateLimits(t *testing.T) {
	var b strings.Builder
	r := newReporter(&b)
	now := time.Unix(1000, 0)
	r.now = func() time.Time { return now }
	d := denial{e: eacces, why: "no egress grant for tcp 1.2.3.4:80", allow: "--egress 1.2.3.4:80/tcp"}
	r.denied("connect", d)
	r.denied("connect", d)
	r.denied("connect", d)
	r.denied("bind", denial{e: eacces, why: "no listen grant for 80/tcp"})
	now = now.Add(reportEvery)
	r.denied("connect", d)
	want := "oak: network: refused connect: no egress grant for tcp 1.2.3.4:80 (EACCES); allow it with --egress 1.2.3.4:80/tcp\n" +
		"oak: network: refused bind: no listen grant for 80/tcp (EACCES)\n" +
		"oak: network: refused connect: no egress grant for tcp 1.2.3.4:80 (EACCES); allow it with --egress 1.2.3.4:80/tcp [2 more like it not shown]\n"
	if b.String() != want {
		t.Errorf("reports:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestReporterBoundsKinds(t *testing.T) {
	var b strings.Builder
	r := newReporter(&b)
	r.now = func() time.Time { return time.Unix(1000, 0) }
	for i := 0; i < 10*maxReportKinds; i++ {
		r.denied("connect", denial{e: eacces, why: fmt.Sprintf("no egress grant for tcp 10.0.0.1:%d", i)})
	}
	if n := len(r.kinds); n > maxReportKinds+1 {
		t.Errorf("the reporter keeps %d kinds, want at most %d", n, maxReportKinds+1)
	}
	if n := strings.Count(b.String(), "\n"); n != maxReportKinds+1 {
		t.Errorf("%d lines for a scan of %d ports in one interval, want %d", n, 10*maxReportKinds, maxReportKinds+1)
	}
}
