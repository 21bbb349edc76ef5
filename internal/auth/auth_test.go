package auth_test

import (
	"strings"
	"testing"

	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/errs"
)

func TestCan(t *testing.T) {
	all := []auth.Action{auth.ReadConfig, auth.RevealConfig, auth.ReadReleases, auth.CreateRelease, auth.ReadEnvironments,
		auth.SetRelease, auth.ReadEvents, auth.ReadAudit, auth.ManageTokens,
		auth.ReadSecrets, auth.WriteSecrets, auth.RevealSecrets}
	allowed := map[auth.Role][]auth.Action{
		auth.Viewer:   {auth.ReadConfig, auth.ReadReleases, auth.ReadEnvironments, auth.ReadEvents, auth.ReadSecrets},
		auth.Editor:   {auth.ReadConfig, auth.ReadReleases, auth.CreateRelease, auth.ReadEnvironments, auth.ReadEvents, auth.ReadSecrets, auth.WriteSecrets},
		auth.Approver: {auth.ReadConfig, auth.ReadReleases, auth.ReadEnvironments, auth.ReadEvents, auth.ReadSecrets},
		auth.Admin:    all,
		auth.SDK:      {auth.ReadConfig, auth.RevealConfig, auth.ReadEvents, auth.ReadSecrets, auth.RevealSecrets},
	}
	for role, ok := range allowed {
		p := auth.Principal{Role: role, Environments: []string{"staging"}}
		for _, a := range all {
			want := false
			for _, o := range ok {
				want = want || o == a
			}
			err := p.Can(a, "staging")
			if (err == nil) != want {
				t.Errorf("%s %s in staging: err = %v, want allowed=%v", role, a, err, want)
			}
			if err != nil && !errs.Is(err, errs.Forbidden) {
				t.Errorf("%s %s: error kind %v, want forbidden", role, a, errs.KindOf(err))
			}
			if want && p.Can(a, "production") == nil {
				t.Errorf("%s %s in production: allowed outside the token's scope", role, a)
			}
		}
	}
}

func TestUnscopedTokens(t *testing.T) {
	if err := (auth.Principal{Role: auth.Viewer}).Can(auth.ReadConfig, "production"); err != nil {
		t.Errorf("an unscoped viewer reads every environment: %v", err)
	}
	if err := (auth.Principal{Role: auth.SDK}).Can(auth.ReadConfig, "production"); err == nil {
		t.Error("an SDK key without an environment must read nothing")
	}
	if err := auth.ValidateScope(auth.SDK, []string{"a", "b"}); !errs.Is(err, errs.Invalid) {
		t.Errorf("ValidateScope(sdk, two envs) = %v, want invalid", err)
	}
}

func TestTokens(t *testing.T) {
	tok, hash, err := auth.NewToken(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, auth.TokenPrefix) || len(tok) < 40 {
		t.Errorf("token %q: want ep_ and at least 32 random bytes", tok)
	}
	if hash != auth.HashToken(tok) || strings.Contains(hash, tok) || !auth.SameHash(hash, auth.HashToken(tok)) {
		t.Error("hash must be the SHA-256 of the token and never contain it")
	}
	tok2, _, _ := auth.NewToken(nil)
	if tok == tok2 {
		t.Error("two tokens are the same")
	}
	if _, err := auth.ParseRole("root"); !errs.Is(err, errs.Invalid) {
		t.Errorf("ParseRole(root) = %v", err)
	}
}
