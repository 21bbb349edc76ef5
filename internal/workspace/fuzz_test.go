package workspace

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/envplane/envplane/internal/diag"
)

// yamlLineCount counts lines the way yaml.v3 does: UTF-16 input (announced
// by a BOM) is decoded first, and CR LF, CR, LF, NEL, LS and PS all end a line.
func yamlLineCount(data []byte) int {
	s := string(data)
	if len(data) >= 2 && (data[0] == 0xFF && data[1] == 0xFE || data[0] == 0xFE && data[1] == 0xFF) {
		le := data[0] == 0xFF
		u := make([]uint16, 0, len(data)/2)
		for i := 2; i+1 < len(data); i += 2 {
			if le {
				u = append(u, uint16(data[i])|uint16(data[i+1])<<8)
			} else {
				u = append(u, uint16(data[i])<<8|uint16(data[i+1]))
			}
		}
		s = string(utf16.Decode(u))
	}
	n := 1
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch r {
		case '\r':
			n++
			if i+1 < len(s) && s[i+1] == '\n' {
				size++
			}
		case '\n', '\u0085', '\u2028', '\u2029':
			n++
		}
		i += size
	}
	return n
}

func FuzzParseWorkspace(f *testing.F) {
	for _, s := range []string{
		"",
		"name: x\n",
		"environments: [development]\n",
		"environments: []\n",
		"environments: [dev, dev, Prod]\n",
		"environments:\n  - name: dev\n  - name: prod\n    data: live\n    protection: restricted\n    promotion: {from: dev, auto: true}\n",
		"environments:\n  - dev\n  - name: prod\n    promotion:\n      from: nowhere\n      approvals: {required: 0, groups: [a], allowSelfApproval: maybe}\n      checks: [policy, {name: ci, type: http}, {type: bogus}]\n      checklist: [a, b]\n      waitTimer: 10x\n",
		"environments: [dev]\nservices: [api, api]\nconfig:\n  layers:\n    - config/{env}.yaml\n    - path: config/{service}/{bad}.json\n      at: .x\n      required: true\n    - /abs\n    - ../up\n    - \"[\"\n  env:\n    prefix: 9X\n    bind: {BAD-NAME: a..b, OK: server.port}\n  schema: ./s.json\n  sensitive: [webhook]\n",
		"environments: [dev]\nsecrets:\n  dir: s\n  recipients:\n    dev: [age1abc, ~, nope]\n    prod: [age1x]\n",
		"environments: [dev]\npolicies:\n  - name: p\n    environments: [dev, prod]\n    services: [x]\n    rule: config.a == 1\n    severity: fatal\n  - name: p\n  - {}\n",
		"environments: [dev]\nenvironmnts: [x]\nunknown: 1\n",
		"environments: [dev]\nname: a\nname: b\n",
		"environments: &e [dev]\nservices: *e\n<<: {name: x}\n",
		"environments: [dev\n",
		"- a\n- b\n",
		"scalar\n",
		"environments:\n\t- dev\n",
		"environments: [dev]\r\nconfig: {env: {prefix: APP}}\r\n",
	} {
		f.Add([]byte(s))
	}
	for _, p := range []string{"../../examples/arka/envplane.yaml", "../../examples/progressive/envplane.yaml"} {
		b, err := os.ReadFile(filepath.FromSlash(p))
		if err != nil {
			f.Fatalf("reading example: %v", err)
		}
		f.Add(b)
	}
	fsys := fstest.MapFS{}
	f.Fuzz(func(t *testing.T, data []byte) {
		w, err := Parse(fsys, data)
		if err == nil {
			if w == nil {
				t.Fatalf("Parse(%q) returned neither a workspace nor an error", data)
			}
			if len(w.Environments) == 0 {
				t.Fatalf("Parse(%q) accepted a workspace without environments", data)
			}
			return
		}
		if w != nil {
			t.Fatalf("Parse(%q) returned both a workspace and an error", data)
		}
		var l diag.List
		if !errors.As(err, &l) || len(l) == 0 {
			t.Fatalf("Parse(%q) error %T %v, want a non-empty diag.List", data, err, err)
		}
		lines := yamlLineCount(data)
		for _, d := range l {
			p := d.Pos
			// Every problem names envplane.yaml; a line, when known, is in the file.
			if p.File != FileName || p.Line < 0 || p.Column < 0 || p.Line > lines+1 || (p.Line == 0 && p.Column != 0) {
				t.Fatalf("Parse(%q): error %q at %+v, outside envplane.yaml (%d lines)", data, d.Message, p, lines)
			}
			if d.Message == "" {
				t.Fatalf("Parse(%q): empty message at %+v", data, p)
			}
		}
	})
}
