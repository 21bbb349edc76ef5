package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/envplane/envplane/internal/store/sqlite"
	"github.com/envplane/envplane/internal/vault"
)

const internalToken = "ep_testadmintoken0000000000000000000000"

// newInternalServer is a server on a fresh SQLite database, called through
// its handler.
func newInternalServer(t *testing.T) *Server {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "envplane.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	mk, err := vault.NewMasterKey(bytes.Repeat([]byte{0x42}, vault.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	v, err := vault.New(vault.Options{Master: mk})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(ctx, Options{Store: st, BootstrapToken: internalToken, Vault: v})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// do calls s with the admin token and returns the status and body.
func do(t *testing.T, s *Server, method, path, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	req.Header.Set("Authorization", "Bearer "+internalToken)
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	return w.Code, w.Body.String()
}

// TestReuploadAnsweredFromMemo: an upload with the bytes of an earlier one is
// answered from the memo of upload bodies, with the answer the full path
// gives; a memo entry the store does not confirm falls through to it.
func TestReuploadAnsweredFromMemo(t *testing.T) {
	s := newInternalServer(t)
	post := func(body string) (int, string) {
		t.Helper()
		return do(t, s, "POST", "/api/v1/releases", body)
	}
	ws := func(v string) string {
		return `{"files":{"envplane.yaml":"name: m\nenvironments:\n  - name: development\n    data: synthetic\n    protection: open\nconfig:\n  layers: [a.yaml]\n","a.yaml":"x: ` + v + `\n"},"labels":{"v":"` + v + `"}}`
	}
	idOf := func(body string) (id, digest string) {
		t.Helper()
		var r struct{ ID, Digest string }
		if err := json.Unmarshal([]byte(body), &r); err != nil || r.ID == "" {
			t.Fatalf("not a release: %v %s", err, body)
		}
		return r.ID, r.Digest
	}
	a := ws("1")
	code, first := post(a)
	if code != http.StatusCreated {
		t.Fatalf("first upload: %d %s", code, first)
	}
	idA, _ := idOf(first)
	if _, ok := s.uploads.get(sha256.Sum256([]byte(a))); !ok {
		t.Fatal("the upload body was not remembered")
	}
	code, again := post(a)
	// The same content in other bytes takes the full path.
	code2, full := post(a + "\n")
	if code != http.StatusOK || code2 != http.StatusOK || again != full {
		t.Fatalf("re-upload from the memo: %d %s\nfull path: %d %s", code, again, code2, full)
	}

	b := ws("2")
	code, other := post(b)
	if code != http.StatusCreated {
		t.Fatalf("second release: %d %s", code, other)
	}
	idB, digestB := idOf(other)
	// Pointing the memo elsewhere shows that it answers.
	s.uploads.put(sha256.Sum256([]byte(a)), digestB)
	if _, got := post(a); !strings.Contains(got, idB) {
		t.Fatalf("the memo was not used: %s", got)
	}
	// A digest the store does not hold falls through to the full path.
	s.uploads.put(sha256.Sum256([]byte(a)), strings.Repeat("0", 64))
	if code, got := post(a); code != http.StatusOK || !strings.Contains(got, idA) {
		t.Fatalf("unconfirmed memo entry: %d %s", code, got)
	}
}

func TestUploadMemoIsBounded(t *testing.T) {
	var u uploadMemo
	for i := range maxUploadMemo + 10 {
		u.put(sha256.Sum256([]byte{byte(i), byte(i >> 8)}), "d")
	}
	if n := len(u.m); n > maxUploadMemo || n == 0 {
		t.Fatalf("%d entries", n)
	}
}
