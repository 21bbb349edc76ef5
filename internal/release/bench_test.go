package release_test

import (
	"fmt"
	"testing"

	"filippo.io/age"

	"github.com/envplane/envplane/internal/cputime"
	"github.com/envplane/envplane/internal/release"
)

// BenchmarkOpenSecrets is what a server pays once per (release,
// environment) to open a workspace secrets file of 50 values with its
// identity: unwrap the data key (one X25519), decrypt every value, check
// the MAC and the binding. Requests never pay it.
func BenchmarkOpenSecrets(b *testing.B) {
	server, err := age.GenerateX25519Identity()
	if err != nil {
		b.Fatal(err)
	}
	other, _ := age.GenerateX25519Identity()
	values := map[string]string{}
	for i := range 50 {
		values[fmt.Sprintf("SECRET_%02d", i)] = fmt.Sprintf("value-%02d-0123456789abcdef0123456789abcdef", i)
	}
	file := sealFile(b, "staging", values, server.Recipient().String(), other.Recipient().String())
	c, err := release.Load(map[string][]byte{"envplane.yaml": []byte("environments: [staging]\n"), "secrets/staging.enc.yaml": file})
	if err != nil {
		b.Fatal(err)
	}
	ids := []age.Identity{server}
	b.ReportAllocs()
	cpu := cputime.Start()
	for b.Loop() {
		e := release.OpenSecrets("rel_1", c.Workspace, ids, nil).For("staging")
		if len(e.Values) != 50 {
			b.Fatalf("%d values, err %v", len(e.Values), e.Err)
		}
	}
	cpu.Report(b)
}
