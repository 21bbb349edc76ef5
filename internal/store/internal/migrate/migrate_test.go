package migrate

import (
	"testing"
	"testing/fstest"
)

func TestLoad(t *testing.T) {
	sql := &fstest.MapFile{Data: []byte("SELECT 1;")}
	for _, tt := range []struct {
		name  string
		files fstest.MapFS
		want  []int // nil: an error
	}{
		{"ordered", fstest.MapFS{"m/0002_b.sql": sql, "m/0001_a.sql": sql, "m/README": sql}, []int{1, 2}},
		{"gap", fstest.MapFS{"m/0001_a.sql": sql, "m/0003_c.sql": sql}, nil},
		{"repeat", fstest.MapFS{"m/0001_a.sql": sql, "m/0001_b.sql": sql}, nil},
		{"bad name", fstest.MapFS{"m/init.sql": sql}, nil},
		{"zero", fstest.MapFS{"m/0000_a.sql": sql}, nil},
	} {
		ms, err := Load(tt.files, "m")
		if tt.want == nil {
			if err == nil {
				t.Errorf("%s: Load succeeded, want an error", tt.name)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		var got []int
		for _, m := range ms {
			got = append(got, m.Version)
		}
		if len(got) != len(tt.want) || got[0] != tt.want[0] || got[len(got)-1] != tt.want[len(tt.want)-1] {
			t.Errorf("%s: versions %v, want %v", tt.name, got, tt.want)
		}
	}
}
