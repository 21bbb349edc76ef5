package web

import (
	"bytes"
	"html/template"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/envplane/envplane/internal/domain"
)

var pageNames = []string{"login", "error", "overview", "matrix", "explain", "diff", "promotions", "audit", "flags", "secrets", "environment", "rollback"}

var funcs = template.FuncMap{
	"join": strings.Join,
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"short": func(s string) string {
		if len(s) > 16 {
			return s[:16] + "…"
		}
		return s
	},
	"dur":  func(d time.Duration) string { return d.String() },
	"add":  func(a, b int) int { return a + b },
	"open": func(s domain.PromotionState) bool { return s.Open() },
	// tpair passes two values to a sub-template.
	"tpair": func(a, b any) pair { return pair{a, b} },
}

// pair is two values for a sub-template ({{template "x" (tpair a b)}}).
type pair struct{ A, B any }

func parsePages() (map[string]*template.Template, error) {
	layout, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/changes.html")
	if err != nil {
		return nil, err
	}
	out := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.Must(layout.Clone()).ParseFS(templateFS, "templates/"+name+".html")
		if err != nil {
			return nil, err
		}
		out[name] = t
	}
	return out, nil
}

var bufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// render executes a page in full before writing, so that a template error
// answers 500 rather than half a page.
func (u *UI) render(w http.ResponseWriter, status int, name string, data any) {
	b := bufs.Get().(*bytes.Buffer)
	defer func() { b.Reset(); bufs.Put(b) }()
	if err := u.pages[name].ExecuteTemplate(b, "layout.html", data); err != nil {
		u.log.Error("web: render", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(b.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// staticHandler serves the embedded assets, cacheable for a day.
func staticHandler(fsys fs.FS) http.Handler {
	files := http.FileServerFS(fsys)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=86400")
		files.ServeHTTP(w, r)
	})
}
