// Package release turns uploaded workspace files into an immutable,
// content-addressed release: it checks paths and sizes, computes the digest
// over sorted paths and contents, and refuses a workspace that does not load
// (with every loader error).
package release

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"testing/fstest"

	"github.com/envplane/envplane/internal/diag"
	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/policy"
	"github.com/envplane/envplane/internal/resolve"
	"github.com/envplane/envplane/internal/workspace"
)

// Limits bound what one release may hold.
const (
	MaxFiles     = 2000
	MaxTotalSize = 16 << 20
	MaxFileSize  = 4 << 20
)

// Digest is "sha256:<hex>" over the sorted paths and contents, each
// length-prefixed so no two file sets share a digest.
func Digest(files map[string][]byte) string {
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	h := sha256.New()
	for _, p := range paths {
		fmt.Fprintf(h, "%d:%s\n%d:", len(p), p, len(files[p]))
		h.Write(files[p])
		h.Write([]byte{'\n'})
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// ID is the release's short, stable name derived from its digest.
func ID(digest string) string {
	return "rel_" + strings.TrimPrefix(digest, "sha256:")[:16]
}

// FS serves release files as a read-only file system.
func FS(files map[string][]byte) fs.FS {
	m := make(fstest.MapFS, len(files))
	for p, b := range files {
		m[p] = &fstest.MapFile{Data: b, Mode: 0o444}
	}
	return m
}

// Loaded is a validated release ready for resolution.
type Loaded struct {
	Workspace *workspace.Workspace
	Resolver  *resolve.Resolver
	Policies  *policy.Compiled
}

// Validate checks files as a release and loads the workspace, returning every
// problem at once as an Invalid error with one field error per problem.
func Validate(files map[string][]byte) (*Loaded, error) {
	var fields []errs.FieldError
	var total int64
	if len(files) == 0 {
		fields = append(fields, errs.FieldError{Field: "files", Message: "a release needs at least " + workspace.FileName})
	}
	if len(files) > MaxFiles {
		return nil, errs.E(errs.TooLarge, "a release holds at most %d files, this one has %d", MaxFiles, len(files))
	}
	for p, b := range files {
		total += int64(len(b))
		if msg := checkPath(p); msg != "" {
			fields = append(fields, errs.FieldError{Field: "files." + p, Message: msg})
		}
		if len(b) > MaxFileSize {
			fields = append(fields, errs.FieldError{Field: "files." + p, Message: fmt.Sprintf("file is %d bytes; the limit is %d", len(b), MaxFileSize)})
		}
	}
	if total > MaxTotalSize {
		return nil, errs.E(errs.TooLarge, "a release holds at most %d bytes, this one has %d", MaxTotalSize, total)
	}
	if len(fields) > 0 {
		sortFields(fields)
		return nil, &errs.Error{Kind: errs.Invalid, Message: "the release files are not valid", Fields: fields}
	}
	l, err := Load(files)
	if err != nil {
		return nil, err
	}
	// Files that do not parse make a release that cannot be resolved.
	var problems diag.List
	for _, e := range l.Workspace.Environments {
		for _, svc := range append([]string{""}, l.Workspace.Services...) {
			res := l.Resolver.Resolve(resolve.Request{Env: e.Name, Service: svc})
			for _, p := range res.Problems {
				if p.Rule == resolve.RuleParse || p.Rule == resolve.RuleLayer {
					problems = append(problems, p.Diagnostic)
				}
			}
		}
	}
	if len(problems) > 0 {
		return nil, loaderError(problems.Sort())
	}
	return l, nil
}

// Load builds the workspace of a stored (already validated) release.
func Load(files map[string][]byte) (*Loaded, error) {
	fsys := FS(files)
	ws, err := workspace.Load(fsys)
	if err != nil {
		return nil, loaderError(err)
	}
	r, err := resolve.New(ws)
	if err != nil {
		return nil, loaderError(err)
	}
	pol, err := policy.Compile(ws.Policies)
	if err != nil {
		return nil, loaderError(err)
	}
	return &Loaded{Workspace: ws, Resolver: r, Policies: pol}, nil
}

func loaderError(err error) error {
	var l diag.List
	if !errors.As(err, &l) {
		return errs.Wrap(errs.Invalid, err, "the workspace does not load")
	}
	fields := make([]errs.FieldError, 0, len(l))
	for _, d := range l {
		field := "files"
		if d.Pos.File != "" {
			field = "files." + d.Pos.File
		}
		fields = append(fields, errs.FieldError{Field: field, Message: d.Error()})
	}
	return &errs.Error{Kind: errs.Invalid, Message: fmt.Sprintf("the workspace does not load (%d problem(s))", len(l)), Fields: fields}
}

func checkPath(p string) string {
	switch {
	case p == "":
		return "empty path"
	case strings.HasPrefix(p, "/") || strings.Contains(p, "\\"):
		return "paths are relative and use /"
	case p != path.Clean(p) || p == ".." || strings.HasPrefix(p, "../"):
		return "use a clean path inside the workspace (no .., no ./, no //)"
	case !fs.ValidPath(p):
		return "not a valid file path"
	}
	return ""
}

func sortFields(f []errs.FieldError) {
	sort.Slice(f, func(i, j int) bool { return f[i].Field < f[j].Field })
}
