package lint

import (
	"encoding/json"
	"io"
	"sort"
)

// ruleHelp describes the built-in rules in SARIF output.
var ruleHelp = map[string]string{
	"parse-error":          "A configuration file does not parse.",
	"unresolved-reference": "A ${NAME} reference that no variable, secret or fallback satisfies.",
	"coercion":             "A variable or secret cannot be converted to the type of the key it sets.",
	"layer":                "A configuration layer is missing, unreadable or ambiguous.",
	"binding":              "An environment variable binds ambiguously or to a key that cannot take it.",
	RuleSchema:             "A resolved config violates the workspace JSON Schema.",
	RuleTypeDrift:          "A key has different types in different environments.",
	RuleMissingKey:         "A key is set in some environments and missing in others.",
	RuleSensitive:          "A sensitive key holds a literal value in a committed file.",
	RuleCopiedSecret:       "A credential of a higher environment equals one of a synthetic-data environment.",
	RuleUnusedLayer:        "A layer matches no file in any environment.",
}

type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool    sarifTool     `json:"tool"`
	Results []sarifResult `json:"results"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	Version        string      `json:"version,omitempty"`
	InformationURI string      `json:"informationUri"`
	Rules          []sarifRule `json:"rules"`
}

type sarifRule struct {
	ID               string       `json:"id"`
	ShortDescription sarifMessage `json:"shortDescription"`
}

type sarifMessage struct {
	Text string `json:"text"`
}

type sarifResult struct {
	RuleID     string          `json:"ruleId"`
	Level      string          `json:"level"`
	Message    sarifMessage    `json:"message"`
	Locations  []sarifLocation `json:"locations,omitempty"`
	Properties map[string]any  `json:"properties,omitempty"`
}

type sarifLocation struct {
	PhysicalLocation sarifPhysical `json:"physicalLocation"`
}

type sarifPhysical struct {
	ArtifactLocation sarifArtifact `json:"artifactLocation"`
	Region           *sarifRegion  `json:"region,omitempty"`
}

type sarifArtifact struct {
	URI string `json:"uri"`
}

type sarifRegion struct {
	StartLine   int `json:"startLine"`
	StartColumn int `json:"startColumn,omitempty"`
}

// WriteSARIF writes findings as a SARIF 2.1.0 log for code-scanning tools.
func WriteSARIF(w io.Writer, fs []Finding, toolVersion string) error {
	run := sarifRun{Tool: sarifTool{Driver: sarifDriver{Name: "envplane", Version: toolVersion, InformationURI: "https://github.com/envplane/envplane"}}, Results: []sarifResult{}}
	ids := map[string]bool{}
	for _, f := range fs {
		ids[f.Rule] = true
		level := "error"
		if f.Severity == SeverityWarning {
			level = "warning"
		}
		r := sarifResult{RuleID: f.Rule, Level: level, Message: sarifMessage{Text: f.Message},
			Properties: map[string]any{"environment": f.Environment, "service": f.Service, "path": f.Path}}
		if file, line, col := splitSource(f.Source); file != "" && !isPseudoSource(file) {
			loc := sarifLocation{PhysicalLocation: sarifPhysical{ArtifactLocation: sarifArtifact{URI: file}}}
			if line > 0 {
				loc.PhysicalLocation.Region = &sarifRegion{StartLine: line, StartColumn: col}
			}
			r.Locations = []sarifLocation{loc}
		}
		run.Results = append(run.Results, r)
	}
	sorted := make([]string, 0, len(ids))
	for id := range ids {
		sorted = append(sorted, id)
	}
	sort.Strings(sorted)
	for _, id := range sorted {
		help := ruleHelp[id]
		if help == "" {
			help = "Workspace policy " + id + "."
		}
		run.Tool.Driver.Rules = append(run.Tool.Driver.Rules, sarifRule{ID: id, ShortDescription: sarifMessage{Text: help}})
	}
	if run.Tool.Driver.Rules == nil {
		run.Tool.Driver.Rules = []sarifRule{}
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(sarifLog{Schema: "https://json.schemastore.org/sarif-2.1.0.json", Version: "2.1.0", Runs: []sarifRun{run}})
}

// isPseudoSource tells env:NAME and secret:NAME places from files.
func isPseudoSource(file string) bool {
	return len(file) > 4 && (file[:4] == "env:" || (len(file) > 7 && file[:7] == "secret:"))
}
