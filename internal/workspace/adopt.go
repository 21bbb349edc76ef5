package workspace

import (
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// Adoption is what `envplane init` found in a folder that already holds
// configuration files: the environments their names give, and the layers
// that read them, lowest precedence first.
type Adoption struct {
	Environments []string
	Layers       []Layer
	Schema       string
	Flags        []string
	// Ignored are config-like files that fit no layer, with the reason.
	Ignored []string
}

// Found reports whether there was anything to adopt.
func (a Adoption) Found() bool { return len(a.Layers) > 0 }

// baseNames are the file names of a base layer every environment starts from.
var baseNames = []string{"default", "base", "common"}

// envRank orders well-known environment names along a promotion path; names
// from config/environments/ that are not listed go between qa and staging.
var envRank = map[string]int{
	"local": 0, "dev": 1, "develop": 1, "development": 1,
	"ci": 2, "test": 2, "testing": 2, "integration": 3, "qa": 4,
	"uat": 6, "stage": 7, "staging": 7,
	"preprod": 8, "preproduction": 8, "pre-production": 8, "pre-prod": 8,
	"prod": 9, "production": 9, "live": 9,
}

const unknownRank = 5

// configExts are the extensions layers can read.
var configExts = []string{".yaml", ".yml", ".json", ".env"}

// family is a set of per-environment files that one {env} layer reads.
type family struct {
	dir     string              // "" for the root
	at      string              // mount point, for config/<dir>/
	files   map[string][]string // env → files
	exts    map[string]int
	ext     string   // the layer's extension, ".*" for any
	ignored []string // files the layer does not read
}

// Detect looks for configuration files in the usual places of fsys —
// config/environments/{env}.*, config/{env}.*, config/<dir>/{env}.*
// (mounted under <dir>), {env}.yaml at the root and .env.{env} — and a
// default/base/common file beside them as the base layer.
func Detect(fsys fs.FS) Adoption {
	var a Adoption
	var bases []Layer
	families := map[string]*family{}
	var order []string
	addFamily := func(dir, at string) *family {
		key := dir
		if f, ok := families[key]; ok {
			return f
		}
		f := &family{dir: dir, at: at, files: map[string][]string{}, exts: map[string]int{}}
		families[key] = f
		order = append(order, key)
		return f
	}
	scan := func(dir, at string, anyName bool) {
		entries, err := fs.ReadDir(fsys, orDot(dir))
		if err != nil {
			return
		}
		for _, e := range entries {
			name := e.Name()
			if e.IsDir() {
				continue
			}
			p := path.Join(dir, name)
			if dir == "" && (name == ".env" || strings.HasPrefix(name, ".env.")) {
				continue // dotenv files: below
			}
			ext := path.Ext(name)
			if !contains(configExts, ext) || name == FileName {
				continue
			}
			stem := strings.TrimSuffix(name, ext)
			switch {
			case contains(baseNames, stem):
				bases = append(bases, Layer{Path: p, At: at})
			case stem == "schema" && ext == ".json" && at == "":
				if b, err := fs.ReadFile(fsys, p); err == nil && strings.Contains(string(b), `"$schema"`) {
					a.Schema = p
				}
			case (stem == "feature-flags" || stem == "flags") && at == "":
				a.Flags = append(a.Flags, p)
			case envNameRE.MatchString(stem) && (anyName || envRank[stem] > 0 || stem == "local"):
				f := addFamily(dir, at)
				f.files[stem] = append(f.files[stem], p)
				f.exts[ext]++
			}
		}
	}
	scan("config/environments", "", true)
	scan("config", "", false)
	scan("", "", false)
	if entries, err := fs.ReadDir(fsys, "config"); err == nil {
		for _, e := range entries {
			if e.IsDir() && e.Name() != "environments" && keyPathRE().MatchString(e.Name()) && !strings.HasPrefix(e.Name(), ".") {
				scan("config/"+e.Name(), e.Name(), false)
			}
		}
	}
	// .env is the lowest dotenv layer, .env.{env} on top of it.
	dotenvs := map[string]bool{}
	dotenvBase := false
	if entries, err := fs.ReadDir(fsys, "."); err == nil {
		for _, e := range entries {
			n := e.Name()
			switch {
			case e.IsDir():
			case n == ".env":
				dotenvBase = true
			case strings.HasPrefix(n, ".env."):
				env := strings.TrimPrefix(n, ".env.")
				if envNameRE.MatchString(env) && env != "example" && env != "sample" && env != "template" {
					dotenvs[env] = true
				}
			}
		}
	}

	envSet := map[string]bool{}
	for _, k := range order {
		f := families[k]
		f.pick()
		for env, files := range f.files {
			if len(files) > 0 {
				envSet[env] = true
			}
		}
		a.Ignored = append(a.Ignored, f.ignored...)
	}
	for env := range dotenvs {
		envSet[env] = true
	}
	for env := range envSet {
		a.Environments = append(a.Environments, env)
	}
	sort.Slice(a.Environments, func(i, j int) bool {
		ri, rj := rank(a.Environments[i]), rank(a.Environments[j])
		if ri != rj {
			return ri < rj
		}
		return a.Environments[i] < a.Environments[j]
	})

	// Unmounted bases first, then the environment files, then each mounted
	// directory's base and files, then dotenv.
	for _, b := range bases {
		if b.At == "" {
			a.Layers = append(a.Layers, b)
		}
	}
	for _, k := range order {
		if f := families[k]; f.at == "" {
			a.Layers = append(a.Layers, f.layer())
		}
	}
	for _, k := range order {
		f := families[k]
		if f.at == "" {
			continue
		}
		for _, b := range bases {
			if b.At == f.at {
				a.Layers = append(a.Layers, b)
			}
		}
		a.Layers = append(a.Layers, f.layer())
	}
	if dotenvBase {
		a.Layers = append(a.Layers, Layer{Path: ".env"})
	}
	if len(dotenvs) > 0 {
		a.Layers = append(a.Layers, Layer{Path: ".env.{env}"})
	}
	return a
}

func orDot(dir string) string {
	if dir == "" {
		return "."
	}
	return dir
}

func rank(env string) int {
	if r, ok := envRank[env]; ok {
		return r
	}
	return unknownRank
}

// pick chooses the layer's extension: the one every file has, else any
// (".*") when each environment has one file, else — an environment has
// two, which one layer cannot tell apart — the most common one, leaving
// the other files out.
func (f *family) pick() {
	dup := false
	for _, files := range f.files {
		dup = dup || len(files) > 1
	}
	switch {
	case len(f.exts) == 1:
		for e := range f.exts {
			f.ext = e
		}
		return
	case !dup:
		f.ext = ".*"
		return
	}
	best := 0
	for _, e := range configExts {
		if n := f.exts[e]; n > best {
			f.ext, best = e, n
		}
	}
	envs := make([]string, 0, len(f.files))
	for env := range f.files {
		envs = append(envs, env)
	}
	sort.Strings(envs)
	for _, env := range envs {
		var kept []string
		for _, p := range f.files[env] {
			if path.Ext(p) == f.ext {
				kept = append(kept, p)
			} else {
				f.ignored = append(f.ignored, fmt.Sprintf("%s (the layer reads %s files; one file per environment)", p, f.ext))
			}
		}
		f.files[env] = kept
	}
}

// layer is the {env} layer reading the family's files.
func (f *family) layer() Layer {
	return Layer{Path: path.Join(f.dir, "{env}"+f.ext), At: f.at}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// EnvPrefix makes an environment-variable prefix of a workspace name:
// upper-case letters and digits, other characters as '_' ("other-thing" →
// OTHER_THING), starting with a letter.
func EnvPrefix(name string) string {
	var b strings.Builder
	under := false
	for _, r := range strings.ToUpper(name) {
		switch {
		case (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9'):
			b.WriteRune(r)
			under = false
		case !under && b.Len() > 0:
			b.WriteByte('_')
			under = true
		}
	}
	p := strings.TrimRight(b.String(), "_")
	if p == "" {
		return "APP"
	}
	if p[0] >= '0' && p[0] <= '9' {
		p = "APP_" + p
	}
	return p
}
