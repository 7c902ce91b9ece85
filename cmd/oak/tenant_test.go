package main

import (
	"fmt"
	"strings"
	"testing"
)

func TestParseUIDs(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string // fmt of the uids, or the error's text
	}{
		{[]string{"4001"}, "[4001]"},
		{[]string{"4001,4002", "4003"}, "[4001 4002 4003]"},
		{[]string{"alice"}, `invalid --uid "alice": want a numeric uid`},
		{[]string{"4001,"}, `invalid --uid "": want a numeric uid`},
		{[]string{"-1"}, `invalid --uid "-1"`},
		{[]string{"4294967296"}, `invalid --uid "4294967296"`},
	} {
		got, err := parseUIDs(c.args)
		s := fmt.Sprint(got)
		if err != nil {
			s = err.Error()
		}
		if !strings.HasPrefix(s, c.want) {
			t.Errorf("parseUIDs(%q) = %s, want %s", c.args, s, c.want)
		}
	}
}
