package engine

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// A tenant's token is a second credential beside its uids: a bearer
// secret that whoever holds it presents (Authorization: Bearer TOKEN) to
// act as the tenant, whatever uid it connects as. It is 256 random bits,
// written "oak_" and then 43 characters of unpadded base64url, so that a
// leaked one is recognisable in a log or a repository.
//
// The daemon keeps only its SHA-256 in the tenant's record. A fast hash
// is enough: the token is random and long, so there is nothing to guess
// that a slow hash would protect; what the hash protects against is a
// reader of the records (a backup, a copy of the state root) learning a
// live credential. A presented token is checked against every tenant's
// hash in constant time, all of them each time, so neither the answer's
// time nor its words tell which tenant (if any) came close.

// TokenPrefix begins every tenant token.
const TokenPrefix = "oak_"

// tokenBytes is a token's entropy: 256 bits.
const tokenBytes = 32

// TokenLen is the length of a token as written.
var TokenLen = len(TokenPrefix) + base64.RawURLEncoding.EncodedLen(tokenBytes)

// ErrBadToken is the cause of every refusal of a presented token: wrong,
// revoked, or of a tenant since removed alike.
var ErrBadToken = errors.New("invalid token")

// CheckTokenFormat reports whether tok is written as a token is: the
// prefix and 43 base64url characters. It says nothing of whether it is
// anyone's.
func CheckTokenFormat(tok string) error {
	rest, ok := strings.CutPrefix(tok, TokenPrefix)
	if !ok || len(tok) != TokenLen {
		return fmt.Errorf("%w: want %s followed by %d base64url characters", ErrBadToken, TokenPrefix, TokenLen-len(TokenPrefix))
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("%w: character %d is not base64url", ErrBadToken, len(TokenPrefix)+i+1)
		}
	}
	return nil
}

func tokenHash(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

// NewTenantToken gives tenant name a new token and returns it: the only
// time it is seen, as only its hash is kept. A token the tenant had is
// revoked by it (rotation).
func (e *Engine) NewTenantToken(name string) (string, error) {
	op := "tenant token " + name
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	tok := TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	err := e.updateTenant(name, func(t *Tenant) {
		t.TokenHash = hex.EncodeToString(tokenHash(tok))
		t.TokenCreated = time.Now().UTC()
	})
	if err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	return tok, nil
}

// RevokeTenantToken takes tenant name's token away: it is refused from
// the next request on. A tenant without a token is an error saying so.
func (e *Engine) RevokeTenantToken(name string) error {
	op := "tenant token rm " + name
	had := false
	err := e.updateTenant(name, func(t *Tenant) {
		had = t.TokenHash != ""
		t.TokenHash, t.TokenCreated = "", time.Time{}
	})
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if !had {
		return fmt.Errorf("%s: the tenant has no token", op)
	}
	return nil
}

// updateTenant changes tenant name's record with f, under the root's
// lock, and replaces it atomically.
func (e *Engine) updateTenant(name string, f func(*Tenant)) error {
	unlock, err := e.lock()
	if err != nil {
		return err
	}
	defer unlock()
	t, err := e.InspectTenant(name)
	if err != nil {
		return err
	}
	f(t)
	return writeFileAtomic(e.tenantPath(t.Name), mustJSON(t))
}

// TenantByToken is the tenant whose token tok is, or ErrBadToken (the
// same error for a token of the wrong form, a wrong one and a revoked
// one). Every tenant's hash is compared, in constant time.
func (e *Engine) TenantByToken(tok string) (*Tenant, error) {
	if CheckTokenFormat(tok) != nil {
		return nil, ErrBadToken
	}
	ts, err := e.ListTenants()
	if err != nil {
		return nil, err
	}
	h := tokenHash(tok)
	var found *Tenant
	for _, t := range ts {
		want, err := hex.DecodeString(t.TokenHash)
		if err != nil || len(want) != len(h) {
			continue // no token (or a record's damaged hash, which matches nothing)
		}
		if subtle.ConstantTimeCompare(h, want) == 1 {
			found = t
		}
	}
	if found == nil {
		return nil, ErrBadToken
	}
	return found, nil
}
