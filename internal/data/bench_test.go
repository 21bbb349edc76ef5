package data

import "testing"

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
