package api

import (
	"encoding/json"
	"errors"
	"net/url"
	"reflect"
	"testing"
)

// FuzzRunRequest feeds arbitrary bodies to the request decoding and the
// mapping onto the engine's options. Neither may panic; a body that is
// accepted must come out the same after encoding it again (nothing is
// dropped or invented), and a refusal must name a field.
func FuzzRunRequest(f *testing.F) {
	for _, s := range []string{
		`{"Image":"demo"}`,
		`{"Image":"demo","Cmd":["sh","-c","echo hi"],"Env":["A=1"],"Memory":67108864,"PidsLimit":-1}`,
		`{"Image":"/srv/root","Entrypoint":[],"Ulimits":[{"Name":"nofile","Soft":1,"Hard":2}],"RestartPolicy":"on-failure:2"}`,
		`{"Image":"demo","NanoCpus":500000000,"LogMaxSize":0,"LogMaxFile":1,"Labels":{"a":"b"}}`,
		`{"Image":"demo","Bogus":true}`,
		`{"Image":1}`,
		`{"Image":"demo"}{"Image":"demo"}`,
		`[]`, `null`, ``, `{"Memory":-2,"Image":"x"}`, `{"Image":"./x"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeJSON[RunRequest](b)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field == "" {
				t.Fatalf("refusal %v names no field", err)
			}
			return
		}
		if _, err := r.RunOptions(); err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field == "" {
				t.Fatalf("refusal %v names no field", err)
			}
		}
		again, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("encode %+v: %v", r, err)
		}
		r2, err := decodeJSON[RunRequest](again)
		if err != nil {
			t.Fatalf("own encoding %s refused: %v", again, err)
		}
		if !reflect.DeepEqual(normal(r), normal(r2)) {
			t.Fatalf("round trip changed the request:\n%+v\n%+v", r, r2)
		}
	})
}

// normal drops the difference between empty and absent that omitempty
// makes.
func normal(r *RunRequest) RunRequest {
	n := *r
	for _, p := range []*[]string{&n.Cmd, &n.Env, &n.Volumes, &n.Tmpfs, &n.Publish, &n.Egress,
		&n.Dns, &n.DnsSearch, &n.DnsOptions, &n.ExtraHosts} {
		if len(*p) == 0 {
			*p = nil
		}
	}
	if len(n.Labels) == 0 {
		n.Labels = nil
	}
	if len(n.Ulimits) == 0 {
		n.Ulimits = nil
	}
	return n
}

// FuzzQuery: query strings never panic the strict parser, and an
// accepted one has only known parameters.
func FuzzQuery(f *testing.F) {
	for _, s := range []string{"all=1", "filter=a=b&filter=c=d", "t=5&signal=TERM", "x=1", "t=1&t=2", "%zz", "tail=-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u := &urlLike{raw}
		q := parseQuery(u.url(), "all", "filter", "t", "signal", "tail")
		q.bool("all")
		q.int("t", 0)
		q.int("tail", -1)
		if q.err != nil {
			return
		}
		for k := range q.v {
			if !contains([]string{"all", "filter", "t", "signal", "tail"}, k) {
				t.Fatalf("unknown parameter %q accepted", k)
			}
		}
	})
}

type urlLike struct{ raw string }

func (u *urlLike) url() *url.URL { return &url.URL{Path: "/", RawQuery: u.raw} }
