package flags

import (
	"bufio"
	"fmt"
	"strings"
)

// A tiny reader for the Gherkin the flagd evaluator suite uses: Feature,
// Background, Scenario and Scenario Outline with Examples tables, tags on
// features, scenarios and example blocks, and data tables under steps.

type scenario struct {
	name  string // feature: scenario [example row]
	tags  []string
	steps []step
	line  int
}

type step struct {
	text  string
	table [][]string // rows under the step, header first
}

type gherkinBlock struct {
	name, kind string
	tags       []string
	steps      []step
	line       int
	examples   []examples
}

type examples struct {
	tags  []string
	table [][]string
}

func parseFeature(name, src string) ([]scenario, error) {
	var (
		featureTags, pending []string
		feature              string
		background           []step
		blocks               []*gherkinBlock
		cur                  *gherkinBlock
		inBackground         bool
		lastTable            *[][]string
	)
	sc := bufio.NewScanner(strings.NewReader(src))
	lineNo := 0
	for sc.Scan() {
		lineNo++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "|") {
			if lastTable == nil {
				return nil, fmt.Errorf("%s:%d: table without a step or Examples", name, lineNo)
			}
			*lastTable = append(*lastTable, cells(line))
			continue
		}
		if strings.HasPrefix(line, "@") {
			pending = append(pending, strings.Fields(line)...)
			continue
		}
		kw, rest, _ := strings.Cut(line, ":")
		switch kw {
		case "Feature":
			feature, featureTags, pending = strings.TrimSpace(rest), pending, nil
			continue
		case "Background":
			inBackground, cur = true, nil
			continue
		case "Scenario", "Scenario Outline", "Scenario Template":
			inBackground = false
			cur = &gherkinBlock{name: strings.TrimSpace(rest), kind: kw, tags: pending, line: lineNo}
			pending = nil
			blocks = append(blocks, cur)
			continue
		case "Examples", "Scenarios":
			if cur == nil {
				return nil, fmt.Errorf("%s:%d: Examples outside a scenario", name, lineNo)
			}
			cur.examples = append(cur.examples, examples{tags: pending})
			pending = nil
			lastTable = &cur.examples[len(cur.examples)-1].table
			continue
		}
		word, text, _ := strings.Cut(line, " ")
		switch word {
		case "Given", "When", "Then", "And", "But", "*":
		default:
			return nil, fmt.Errorf("%s:%d: cannot read %q", name, lineNo, line)
		}
		st := step{text: text}
		if inBackground {
			background = append(background, st)
			lastTable = &background[len(background)-1].table
		} else if cur != nil {
			cur.steps = append(cur.steps, st)
			lastTable = &cur.steps[len(cur.steps)-1].table
		} else {
			return nil, fmt.Errorf("%s:%d: step outside a scenario", name, lineNo)
		}
	}
	var out []scenario
	for _, b := range blocks {
		base := append(append([]string{}, featureTags...), b.tags...)
		steps := append(append([]step{}, background...), b.steps...)
		if len(b.examples) == 0 {
			out = append(out, scenario{name: feature + ": " + b.name, tags: base, steps: steps, line: b.line})
			continue
		}
		for _, ex := range b.examples {
			if len(ex.table) == 0 {
				continue
			}
			head := ex.table[0]
			for _, row := range ex.table[1:] {
				sub := func(s string) string {
					for i, h := range head {
						s = strings.ReplaceAll(s, "<"+h+">", row[i])
					}
					return s
				}
				var ss []step
				for _, s := range steps {
					ss = append(ss, step{text: sub(s.text), table: s.table})
				}
				out = append(out, scenario{name: fmt.Sprintf("%s: %s %v", feature, b.name, row),
					tags: append(append([]string{}, base...), ex.tags...), steps: ss, line: b.line})
			}
		}
	}
	return out, nil
}

// cells splits a table row, undoing the escapes \| \\ and \n.
func cells(line string) []string {
	line = strings.TrimSuffix(strings.TrimPrefix(line, "|"), "|")
	var out []string
	var b strings.Builder
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\\' && i+1 < len(line) && (line[i+1] == '|' || line[i+1] == '\\'):
			b.WriteByte(line[i+1])
			i++
		case c == '\\' && i+1 < len(line) && line[i+1] == 'n':
			b.WriteByte('\n')
			i++
		case c == '|':
			out = append(out, strings.TrimSpace(b.String()))
			b.Reset()
		default:
			b.WriteByte(c)
		}
	}
	return append(out, strings.TrimSpace(b.String()))
}
