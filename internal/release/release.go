// Package release turns uploaded workspace files into an immutable,
// content-addressed release: it checks paths and sizes, computes the digest
// over sorted paths and contents, and refuses a workspace that does not load
// (with every loader error).
package release

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"sort"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/envplane/envplane/internal/config"
	"github.com/envplane/envplane/internal/diag"
	"github.com/envplane/envplane/internal/errs"
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

// ValidationBudget bounds the CPU one release's validation may take: the
// upload is answered 422 rather than holding a core for minutes.
const ValidationBudget = 10 * time.Second

// Validate checks files as a release and loads the workspace, returning every
// problem at once as an Invalid error with one field error per problem.
// Every environment is resolved once, and again per service only when
// service layers exist; ctx (and ValidationBudget) bound the work.
func Validate(ctx context.Context, files map[string][]byte) (*config.Compiled, error) {
	c, _, err := ValidateWith(ctx, files, nil, nil)
	return c, err
}

// ValidateWith is Validate for a server with age identities ids: each
// environment is resolved with the secrets of its workspace secrets file
// that ids open, and a secrets file that does not parse, or that ids open
// but that fails authentication, is a problem of the release. The opened
// files come back for the server to keep with the release; log (nil:
// discarded) gets one line per file ids do not open.
func ValidateWith(ctx context.Context, files map[string][]byte, ids []age.Identity, log *slog.Logger) (*config.Compiled, *Secrets, error) {
	var fields []errs.FieldError
	var total int64
	if len(files) == 0 {
		fields = append(fields, errs.FieldError{Field: "files", Message: "a release needs at least " + workspace.FileName})
	}
	if len(files) > MaxFiles {
		return nil, nil, errs.E(errs.TooLarge, "a release holds at most %d files, this one has %d", MaxFiles, len(files))
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
		return nil, nil, errs.E(errs.TooLarge, "a release holds at most %d bytes, this one has %d", MaxTotalSize, total)
	}
	if len(fields) > 0 {
		sortFields(fields)
		return nil, nil, &errs.Error{Kind: errs.Invalid, Message: "the release files are not valid", Fields: fields}
	}
	ctx, cancel := context.WithTimeout(ctx, ValidationBudget)
	defer cancel()
	c, err := Load(files)
	if err != nil {
		return nil, nil, err
	}
	sec := OpenSecrets(ID(Digest(files)), c.Workspace, ids, log)
	// Files that do not parse make a release that cannot be resolved.
	ws := c.Workspace
	services := []string{""}
	if ws.UsesServices() {
		services = append(services, ws.Services...)
	}
	var problems diag.List
	var secretFields []errs.FieldError
	for _, e := range ws.Environments {
		es := sec.For(e.Name)
		if es.Err != nil {
			secretFields = append(secretFields, es.Fields()...)
			continue
		}
		for _, svc := range services {
			if err := ctx.Err(); errors.Is(err, context.DeadlineExceeded) {
				return nil, nil, errs.Wrap(errs.Unprocessable, err, "validating the release took longer than %s (%d environments × %d services); make it smaller", ValidationBudget, len(ws.Environments), len(services))
			} else if err != nil {
				return nil, nil, errs.Wrap(errs.Unavailable, err, "the upload ended before its validation did")
			}
			res := c.Resolver.Resolve(resolve.Request{Env: e.Name, Service: svc, Secrets: es.Values})
			for _, p := range res.Problems {
				if p.Rule == resolve.RuleParse || p.Rule == resolve.RuleLayer {
					problems = append(problems, p.Diagnostic)
				}
			}
		}
	}
	if len(problems) > 0 || len(secretFields) > 0 {
		err := loaderError(dedupe(problems.Sort())).(*errs.Error)
		err.Fields = append(err.Fields, secretFields...)
		sortFields(err.Fields)
		err.Message = fmt.Sprintf("the workspace does not load (%d problem(s))", len(err.Fields))
		return nil, nil, err
	}
	return c, sec, nil
}

// dedupe drops repeats of one problem (a shared file fails in every
// environment), keeping order.
func dedupe(l diag.List) diag.List {
	seen := make(map[diag.Diagnostic]bool, len(l))
	out := l[:0]
	for _, d := range l {
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

// Load builds the workspace of a stored (already validated) release, its
// policies included.
func Load(files map[string][]byte) (*config.Compiled, error) {
	c, err := config.Compile(FS(files))
	if err != nil {
		return nil, loaderError(err)
	}
	return c, nil
}

func loaderError(err error) error {
	l := diag.Of(err)
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
	sort.SliceStable(f, func(i, j int) bool { return f[i].Field < f[j].Field })
}
