package flags

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNeedsTargetingKey(t *testing.T) {
	d := Parse(File{Name: "f.yaml", Data: []byte(`flags:
  split:
    state: ENABLED
    variants: {a: 1, b: 2}
    defaultVariant: a
    targeting: {fractional: [[a, 50], [b, 50]]}
  byEmail:
    state: ENABLED
    variants: {a: 1, b: 2}
    defaultVariant: a
    targeting: {fractional: [{var: email}, [a, 50], [b, 50]]}
  off:
    state: DISABLED
    variants: {a: 1, b: 2}
    defaultVariant: a
    targeting: {fractional: [[a, 50], [b, 50]]}
  static:
    state: ENABLED
    variants: {a: 1}
    defaultVariant: a
  rollout:
    default: false
    rollout: {type: percentage, value: 10}
`)})
	if p := d.Problems(); len(p) > 0 {
		t.Fatal(p)
	}
	s := d.Set("production")
	got, free := map[string]bool{}, map[string]bool{}
	for _, k := range append(s.Keys(), "missing") {
		got[k] = s.NeedsTargetingKey(k)
		free[k] = s.ContextFree(k)
	}
	want := map[string]bool{"split": true, "byEmail": false, "off": false, "static": false, "rollout": true, "missing": false}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("NeedsTargetingKey (-want +got)\n%s", diff)
	}
	wantFree := map[string]bool{"split": false, "byEmail": false, "off": true, "static": true, "rollout": false, "missing": false}
	if diff := cmp.Diff(wantFree, free); diff != "" {
		t.Errorf("ContextFree (-want +got)\n%s", diff)
	}
}
