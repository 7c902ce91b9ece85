package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/oak-engine/oak/engine"
)

// Tokens: a tenant's second credential (see engine/tenant_token.go).
//
// A request that carries "Authorization: Bearer TOKEN" acts as the
// token's tenant, and only as it, whoever its peer is:
//
//   - from a uid that is a tenant's, it is the token's tenant, not the
//     uid's (a token never adds to what the uid has: the two are not
//     merged);
//   - from a uid that is nobody's, it is the token's tenant: a token is
//     what lets a user with no uid of its own on the list (a CI job, a
//     service account) act as a tenant;
//   - from root (uid 0), it is the token's tenant too, confined like any
//     tenant: a gateway that authenticates its own clients passes their
//     tokens on and gets their view, not root's.
//
// A token that is wrong, revoked, of a removed tenant, or not written as a
// token is answered 401 with one message, which names no tenant. A
// malformed header (another scheme, two headers, no token) is 401 too,
// saying what is wrong with the header, never repeating its value. The
// peer's credentials are still required: a connection without them is
// 401 whatever it sends.

// TokenEngine is what the server needs of the engine to take tokens;
// *engine.Engine has it. An engine without it refuses every token.
type TokenEngine interface {
	TenantByToken(tok string) (*engine.Tenant, error)
}

// errBadToken is the one answer to a token that is not a tenant's.
var errBadToken = &authError{http.StatusUnauthorized, CodeUnauthorized,
	"invalid token: it is wrong, or was revoked (oak tenant token rm, or a newer token replaced it)"}

// bearerToken reads the Authorization header of h: no header is no token;
// otherwise exactly one, "Bearer TOKEN" (the scheme in any case, one
// space), TOKEN written as a token is (engine.CheckTokenFormat). Its
// errors never contain the header's value.
func bearerToken(h http.Header) (tok string, ok bool, err error) {
	vs, ok := h["Authorization"]
	if !ok {
		return "", false, nil
	}
	if len(vs) != 1 {
		return "", true, fmt.Errorf("Authorization: given %d times; want one, Bearer TOKEN", len(vs))
	}
	scheme, tok, found := strings.Cut(vs[0], " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", true, errors.New("Authorization: want Bearer TOKEN, the only scheme this daemon takes")
	}
	if err := engine.CheckTokenFormat(tok); err != nil {
		return "", true, fmt.Errorf("Authorization: Bearer %w", err)
	}
	return tok, true, nil
}

// tokenTenant is the tenant tok is the token of, or errBadToken.
func (s *Server) tokenTenant(tok string) (*engine.Tenant, error) {
	te, ok := s.eng.(TokenEngine)
	if !ok {
		return nil, errBadToken
	}
	t, err := te.TenantByToken(tok)
	switch {
	case errors.Is(err, engine.ErrBadToken) || (err == nil && t == nil):
		return nil, errBadToken
	case err != nil:
		return nil, fmt.Errorf("authorize token: %w", err)
	}
	return t, nil
}
