package config_test

import (
	"os"
	"testing"

	"github.com/envplane/envplane/internal/config"
)

// BenchmarkCompileArka is what every command pays to load examples/arka:
// envplane.yaml, the schema and the CEL policies.
func BenchmarkCompileArka(b *testing.B) {
	fsys := os.DirFS("../../examples/arka")
	for _, bc := range []struct {
		name string
		opts []config.Option
	}{{"default", nil}, {"with-policies", []config.Option{config.WithPolicies()}}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := config.Compile(fsys, bc.opts...); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
