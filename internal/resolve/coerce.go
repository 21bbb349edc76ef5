package resolve

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/envplane/envplane/internal/tree"
)

// coerce turns text from a variable, secret or dotenv file into a value of
// kind (with elem for array elements), the way Spring Boot's relaxed binding
// does: "8080" → 8080, "true"/"yes"/"on"/"1" → true, "a,b" → ["a","b"].
func coerce(text string, kind, elem tree.Kind) (*tree.Value, error) {
	v := &tree.Value{Kind: kind}
	switch kind {
	case tree.String, tree.Null:
		v.Kind, v.Str = tree.String, text
	case tree.Int, tree.Uint:
		// Integers above int64 stay exact as Uint; smaller ones are Int
		// whatever the old value was, so one number has one form.
		t := strings.TrimSpace(text)
		if i, err := strconv.ParseInt(t, 10, 64); err == nil {
			v.Kind, v.Int = tree.Int, i
		} else if u, err := strconv.ParseUint(t, 10, 64); err == nil {
			v.Kind, v.Uint = tree.Uint, u
		} else {
			return nil, fmt.Errorf("expects an integer")
		}
	case tree.Float:
		f, err := strconv.ParseFloat(strings.TrimSpace(text), 64)
		if err != nil {
			return nil, fmt.Errorf("expects a number")
		}
		v.Float = f
	case tree.Bool:
		switch strings.ToLower(strings.TrimSpace(text)) {
		case "true", "yes", "on", "1":
			v.Bool = true
		case "false", "no", "off", "0":
		default:
			return nil, fmt.Errorf("expects a boolean (true/false, yes/no, on/off, 1/0)")
		}
	case tree.Array:
		if strings.TrimSpace(text) == "" {
			v.Items = []*tree.Value{}
			return v, nil
		}
		parts := strings.Split(text, ",")
		v.Items = make([]*tree.Value, len(parts))
		for i, p := range parts {
			if elem == tree.Array || elem == tree.Map {
				return nil, fmt.Errorf("expects a list of %ss, which a comma list cannot express", elem)
			}
			it, err := coerce(strings.TrimSpace(p), elem, 0)
			if err != nil {
				return nil, fmt.Errorf("expects a comma-separated list of %ss (item %d: %v)", elem, i+1, err)
			}
			v.Items[i] = it
		}
	case tree.Map:
		return nil, fmt.Errorf("is a map of keys; set its keys one by one")
	}
	return v, nil
}
