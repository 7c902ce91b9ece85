package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
)

// MaxBody bounds a request body. The largest legitimate one, a RunRequest
// with a long environment, is a few KiB.
const MaxBody = 1 << 20

// errTooLarge is a body above MaxBody.
var errTooLarge = fmt.Errorf("request body above %d bytes", MaxBody)

// decodeBody reads one JSON value of type T from r, strictly: a key T
// does not have, a value of the wrong type, a second value after the
// first, or more than MaxBody bytes are refused, naming the field where
// the decoder can. Request bodies are untrusted input.
func decodeBody[T any](r io.Reader) (*T, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxBody+1))
	if errors.Is(err, errBodyTimeout) {
		return nil, err
	}
	if err != nil {
		return nil, &FieldError{"body", err.Error()}
	}
	if len(b) > MaxBody {
		return nil, errTooLarge
	}
	return decodeJSON[T](b)
}

// decodeJSON is decodeBody's parsing, on bytes already read.
func decodeJSON[T any](b []byte) (*T, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	v := new(T)
	if err := dec.Decode(v); err != nil {
		return nil, jsonFieldError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &FieldError{"body", "want one JSON object, found more after it"}
	}
	return v, nil
}

// jsonFieldError turns a decoding error into a FieldError naming the
// field.
func jsonFieldError(err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "body"
		}
		return &FieldError{field, fmt.Sprintf("want %s, got JSON %s", te.Type, te.Value)}
	case errors.As(err, &se):
		return &FieldError{"body", fmt.Sprintf("not JSON at byte %d: %v", se.Offset, err)}
	case errors.Is(err, io.EOF):
		return &FieldError{"body", "empty; want a JSON object"}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.TrimPrefix(err.Error(), "json: unknown field ")
		if unq, err := strconv.Unquote(name); err == nil && unq != "" {
			name = unq
		}
		return &FieldError{name, "no such field"}
	}
	return &FieldError{"body", err.Error()}
}

// query reads a request's query parameters strictly: each known at most
// once, no unknown one. The getters refuse malformed values, naming the
// parameter.
type query struct {
	v   url.Values
	err error
}

func parseQuery(u *url.URL, known ...string) *query {
	v, err := url.ParseQuery(u.RawQuery)
	q := &query{v: v}
	if err != nil {
		q.err = &FieldError{"query", err.Error()}
		return q
	}
	for k, vs := range v {
		if !contains(known, k) {
			q.err = &FieldError{k, "no such parameter"}
			return q
		}
		if len(vs) > 1 && k != "filter" {
			q.err = &FieldError{k, "given more than once"}
			return q
		}
	}
	return q
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// bool reads a flag: absent, 0, false; or 1, true.
func (q *query) bool(name string) bool {
	s := q.v.Get(name)
	switch s {
	case "", "0", "false":
		return false
	case "1", "true":
		return true
	}
	if q.err == nil {
		q.err = &FieldError{name, fmt.Sprintf("%q: want 0, 1, true or false", s)}
	}
	return false
}

// int reads a whole number, def when absent.
func (q *query) int(name string, def int) int {
	s := q.v.Get(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		if q.err == nil {
			q.err = &FieldError{name, fmt.Sprintf("%q: want a whole number", s)}
		}
		return def
	}
	return n
}

func (q *query) string(name string) string { return q.v.Get(name) }

func (q *query) strings(name string) []string { return q.v[name] }
