package web

import (
	"html"
	"html/template"
	"strings"
)

// The matrix's rows are written here, escaped by hand, rather than by
// html/template: with 5 environments × 5,000 keys the template's
// per-value escaper calls (through reflection) cost three quarters of a
// render (docs/PERFORMANCE.md). The output is the markup the template
// wrote: text and attributes HTML-escaped, query values URL-escaped.

// queryEscape escapes s as a URL query value exactly as html/template
// does: every byte but the unreserved ones as %xx, in lower case.
func queryEscape(s string) string {
	const hex = "0123456789abcdef"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// rowsHTML is the matrix's table body.
func (d *matrixData) rowsHTML() template.HTML {
	var b strings.Builder
	b.Grow(len(d.Rows) * (64 + 200*len(d.Envs)))
	svc := ""
	if d.Service != "" {
		svc = "&amp;service=" + html.EscapeString(queryEscape(d.Service))
	}
	envq := make([]string, len(d.Envs))
	envh := make([]string, len(d.Envs))
	for i, e := range d.Envs {
		envq[i], envh[i] = html.EscapeString(queryEscape(e)), html.EscapeString(e)
	}
	for _, r := range d.Rows {
		key := html.EscapeString(r.Key)
		b.WriteString("<tr")
		if r.Differs {
			b.WriteString(` class="differs"`)
		}
		b.WriteString(` data-key="`)
		b.WriteString(key)
		b.WriteString(`"><th scope="row"><code>`)
		b.WriteString(key)
		b.WriteString("</code>")
		if r.Differs {
			b.WriteString(` <span class="tag" aria-label="differs between environments">≠</span>`)
		}
		b.WriteString("</th>\n")
		keyq := html.EscapeString(queryEscape(r.Key))
		for i, c := range r.Cells {
			if !c.Present {
				b.WriteString(`<td class="absent" data-env="`)
				b.WriteString(envh[i])
				if _, ok := d.Errors[c.Env]; ok {
					b.WriteString(`">no config</td>`)
				} else {
					b.WriteString(`">not set</td>`)
				}
				continue
			}
			b.WriteString(`<td data-env="`)
			b.WriteString(envh[i])
			b.WriteString(`"><a href="/explain?env=`)
			b.WriteString(envq[i])
			b.WriteString("&amp;key=")
			b.WriteString(keyq)
			b.WriteString(svc)
			b.WriteString(`" title="`)
			b.WriteString(html.EscapeString(c.Source))
			b.WriteString(`" aria-label="`)
			b.WriteString(key)
			b.WriteString(" in ")
			b.WriteString(envh[i])
			b.WriteString(`: explain"><code`)
			if c.Hidden {
				b.WriteString(` class="hidden-value"`)
			}
			b.WriteString(">")
			b.WriteString(html.EscapeString(c.Value))
			b.WriteString("</code></a></td>")
		}
		b.WriteString("\n</tr>")
	}
	return template.HTML(b.String())
}
