package data

import (
	"testing"

	"github.com/envplane/envplane/internal/cputime"
)

func BenchmarkTransformCustomer(b *testing.B) {
	cols := []Column{{Name: "email", Category: "S", TypName: "text"}, {Name: "name", Category: "S", TypName: "text"}, {Name: "phone", Category: "S", TypName: "text"}}
	plan := []colT{{idx: 0, col: cols[0], rule: mustRule("{fake: email}")}, {idx: 1, col: cols[1], rule: mustRule("{fake: name}")}, {idx: 2, col: cols[2], rule: mustRule("{mask: {last: 2}}")}}
	tr := newTransformer([]byte("k"), cols, plan)
	f := make([][]byte, 3)
	for i := 0; i < b.N; i++ {
		f[0], f[1], f[2] = []byte("ann@acme.test"), []byte("Ann Example"), []byte("+1 415 555 0101")
		if err := tr.row(f); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTransformBenchRow is one customers row of scripts/bench-compare-data
// (fake e-mail, fake name, mask, null, date noise; three columns kept) through
// the transformers, as bytes in and out: cpu-ns/op is the CPU per row.
func BenchmarkTransformBenchRow(b *testing.B) {
	cols := []Column{{Name: "id", TypName: "int8"}, {Name: "email", Category: "S", TypName: "text"}, {Name: "full_name", Category: "S", TypName: "text"},
		{Name: "phone", Category: "S", TypName: "text"}, {Name: "ssn", Category: "S", TypName: "text"}, {Name: "birth_date", Category: "D", TypName: "date"}}
	plan := []colT{{idx: 1, col: cols[1], rule: mustRule("{fake: email}")}, {idx: 2, col: cols[2], rule: mustRule("{fake: name}")},
		{idx: 3, col: cols[3], rule: mustRule("{mask: {last: 2}}")}, {idx: 4, col: cols[4], rule: mustRule("null")}, {idx: 5, col: cols[5], rule: mustRule("{noise: 365d}")}}
	tr := newTransformer([]byte("k"), cols, plan)
	in := [][]byte{{0, 0, 0, 0, 0, 0, 0, 7}, []byte("person7@acme-corp.test"), []byte("Zebulon Quixote7"), []byte("+1 415 555 0007"), []byte("123-45-0007"), {0, 0, 0x20, 0}}
	f := make([][]byte, len(in))
	b.ReportAllocs()
	cpu := cputime.Start()
	defer cpu.Report(b)
	for b.Loop() {
		copy(f, in)
		if err := tr.row(f); err != nil {
			b.Fatal(err)
		}
	}
}
