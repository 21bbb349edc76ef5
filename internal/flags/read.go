package flags

import (
	"errors"
	"io/fs"

	"github.com/envplane/envplane/internal/diag"
)

// ReadFS parses the flag files names (workspace-relative, in the order
// envplane.yaml lists them) from fsys; a file that cannot be read is a
// problem at its name.
func ReadFS(fsys fs.FS, names []string) *Document {
	var files []File
	var missing []Problem
	for _, n := range names {
		data, err := fs.ReadFile(fsys, n)
		if err != nil {
			msg := "cannot read the flag file: " + err.Error()
			if errors.Is(err, fs.ErrNotExist) {
				msg = "the flag file does not exist (listed under flags: in envplane.yaml)"
			}
			missing = append(missing, Problem{Pos: diag.Pos{File: n}, Message: msg})
			continue
		}
		files = append(files, File{Name: n, Data: data})
	}
	d := Parse(files...)
	d.problems = append(missing, d.problems...)
	return d
}
