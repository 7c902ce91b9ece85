package engine

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// TestTenantTokens: a token acts as its tenant; the record keeps only its
// hash; a new token revokes the old one; a revoked, wrong or malformed
// token is refused with one error.
func TestTenantTokens(t *testing.T) {
	e := tenantRoot(t)
	if _, err := e.CreateTenant(TenantOptions{Name: "b", UIDs: []uint32{4002}, Factory: "fb"}); err != nil {
		t.Fatal(err)
	}
	tokA, err := e.NewTenantToken("a")
	if err != nil {
		t.Fatal(err)
	}
	tokB, err := e.NewTenantToken("b")
	if err != nil {
		t.Fatal(err)
	}
	if CheckTokenFormat(tokA) != nil || len(tokA) != TokenLen || tokA == tokB {
		t.Fatalf("tokens %q %q: want two distinct well-formed tokens", tokA, tokB)
	}
	for tok, want := range map[string]string{tokA: "a", tokB: "b"} {
		if got, err := e.TenantByToken(tok); err != nil || got.Name != want {
			t.Errorf("TenantByToken(%s's) = %v, %v", want, got, err)
		}
	}
	rec, err := os.ReadFile(e.tenantPath("a"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(rec), tokA[len(TokenPrefix):]) || !strings.Contains(string(rec), "token_sha256") {
		t.Errorf("tenant a's record keeps the token, or no hash of it:\n%s", rec)
	}

	// Rotation: the old token is refused, the new one is a's.
	tokA2, err := e.NewTenantToken("a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.TenantByToken(tokA); !errors.Is(err, ErrBadToken) {
		t.Errorf("a's rotated-out token: %v, want ErrBadToken", err)
	}
	if got, err := e.TenantByToken(tokA2); err != nil || got.Name != "a" {
		t.Errorf("a's new token: %v, %v", got, err)
	}
	// Revocation.
	if err := e.RevokeTenantToken("a"); err != nil {
		t.Fatal(err)
	}
	if err := e.RevokeTenantToken("a"); err == nil || !strings.Contains(err.Error(), "has no token") {
		t.Errorf("revoking a token twice: %v", err)
	}
	flipped := []byte(tokB)
	flipped[len(flipped)-1] ^= 1
	for _, bad := range []string{tokA2, string(flipped), "", "oak_", tokB + "x", strings.ToUpper(tokB), "Bearer " + tokB} {
		if got, err := e.TenantByToken(bad); err != ErrBadToken || got != nil {
			t.Errorf("TenantByToken(%q) = %v, %v; want ErrBadToken", bad, got, err)
		}
	}
	if _, err := e.NewTenantToken("nosuch"); !errors.Is(err, ErrNoSuchTenant) {
		t.Errorf("token for a missing tenant: %v", err)
	}
	// A removed tenant's token goes with its record.
	if err := e.RemoveTenant("b"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.TenantByToken(tokB); err != ErrBadToken {
		t.Errorf("a removed tenant's token: %v", err)
	}
}
