// Command yamlmerge is the comparison program for `envplane resolve` in
// scripts/bench-compare-cli: it reads a workspace's two YAML layers with
// yaml.v3, deep-merges the second into the first and prints the result as
// JSON, as a hand-written loader without provenance, schema or policies
// would.
//
// usage: yamlmerge BASE.yaml OVERRIDE.yaml
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"gopkg.in/yaml.v3"
)

func main() {
	var merged map[string]any
	for _, file := range os.Args[1:] {
		data, err := os.ReadFile(file)
		if err != nil {
			fail(err)
		}
		var layer map[string]any
		if err := yaml.Unmarshal(data, &layer); err != nil {
			fail(fmt.Errorf("%s: %v", file, err))
		}
		merged = merge(merged, layer)
	}
	out, err := json.MarshalIndent(merged, "", "  ")
	if err != nil {
		fail(err)
	}
	os.Stdout.Write(append(out, '\n'))
}

// merge deep-merges b into a: maps merge key by key, anything else replaces.
func merge(a, b map[string]any) map[string]any {
	if a == nil {
		a = map[string]any{}
	}
	for k, bv := range b {
		am, aok := a[k].(map[string]any)
		bm, bok := bv.(map[string]any)
		if aok && bok {
			a[k] = merge(am, bm)
			continue
		}
		a[k] = bv
	}
	return a
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "yamlmerge:", err)
	os.Exit(2)
}
