package web

import (
	"html/template"
	"strings"
	"testing"
)

// rowsTemplate is the matrix body as html/template wrote it before
// rowsHTML: the hand-escaped rows must be the same markup.
const rowsTemplate = `{{$svc := .Service}}{{range .Rows}}<tr{{if .Differs}} class="differs"{{end}} data-key="{{.Key}}"><th scope="row"><code>{{.Key}}</code>{{if .Differs}} <span class="tag" aria-label="differs between environments">≠</span>{{end}}</th>
{{$key := .Key}}{{range .Cells}}{{if .Present}}<td data-env="{{.Env}}"><a href="/explain?env={{.Env}}&amp;key={{$key}}{{with $svc}}&amp;service={{.}}{{end}}" title="{{.Source}}" aria-label="{{$key}} in {{.Env}}: explain"><code{{if .Hidden}} class="hidden-value"{{end}}>{{.Value}}</code></a></td>{{else}}<td class="absent" data-env="{{.Env}}">{{if index $.Errors .Env}}no config{{else}}not set{{end}}</td>{{end}}{{end}}
</tr>{{end}}`

func TestRowsHTMLIsTheTemplatesMarkup(t *testing.T) {
	tmpl := template.Must(template.New("rows").Parse(rowsTemplate))
	for _, svc := range []string{"", "api", "a b&c"} {
		d := &matrixData{Envs: []string{"dev", "prod"}, Service: svc, Errors: map[string]string{"prod": "does not resolve"}, Rows: []row{
			{Key: "server.port", Cells: []cell{{Env: "dev", Present: true, Value: "8080", Source: "file config/default.yaml:3"}, {Env: "prod"}}},
			{Key: `odd."key"<&>`, Differs: true, Cells: []cell{
				{Env: "dev", Present: true, Value: `<script>"x" & 'y'</script>`, Source: `variable "A" <b>`, Hidden: false},
				{Env: "prod", Present: true, Value: "[hidden]", Source: "secret DB", Hidden: true}}},
			{Key: "ümlaut key", Cells: []cell{{Env: "dev"}, {Env: "prod", Present: true, Value: "é", Source: "s"}}},
		}}
		var want strings.Builder
		if err := tmpl.Execute(&want, d); err != nil {
			t.Fatal(err)
		}
		if got := string(d.rowsHTML()); got != want.String() {
			t.Errorf("service %q:\n got %s\nwant %s", svc, got, want.String())
		}
	}
}
