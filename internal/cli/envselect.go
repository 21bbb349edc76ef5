package cli

import (
	"fmt"

	"strings"

	"github.com/envplane/envplane/internal/diag"

	"github.com/envplane/envplane/internal/suggest"
	"github.com/envplane/envplane/internal/workspace"
)

// envFlagHelp describes --env on commands where it may be omitted.
const envFlagHelp = "environment (default: $ENVPLANE_ENV, else the first set variable of config.env.select)"

// environment is the environment a command acts on: --env when given, else
// the value of ENVPLANE_ENV, else that of the first set variable listed in
// config.env.select. It must name one of the workspace's environments (a
// near miss gets a did-you-mean); an unknown service is reported with it.
func (a *app) environment(l *loaded, flag, service string) (string, error) {
	vars := append([]string{"ENVPLANE_ENV"}, l.Workspace.Config.Env.Select...)
	name, from := flag, ""
	if name == "" {
		for _, v := range vars {
			if val := a.getenv(v); val != "" {
				name, from = val, v
				break
			}
		}
	}
	known := l.Workspace.EnvironmentNames()
	if name == "" {
		if len(vars) == 1 {
			return "", fmt.Errorf("no environment: pass --env E or set ENVPLANE_ENV; known: %s (config.env.select in %s can name more variables, like NODE_ENV)",
				strings.Join(known, ", "), workspace.FileName)
		}
		return "", fmt.Errorf("no environment: pass --env E or set one of %s (ENVPLANE_ENV, then config.env.select); known: %s",
			strings.Join(vars, ", "), strings.Join(known, ", "))
	}
	if _, ok := l.Workspace.Environment(name); ok {
		return name, nil
	}
	errs := diag.List{unknownEnvironment(from, name, known)}
	if service != "" && len(known) > 0 {
		// Checked against a known environment: only the service's problem.
		appendErr(&errs, l.Check(known[0], service).Err())
	}
	return "", errs
}

// checkEnvironments reports every name that is not an environment of the
// workspace, each with a did-you-mean.
func (a *app) checkEnvironments(l *loaded, names ...string) error {
	known := l.Workspace.EnvironmentNames()
	var errs diag.List
	for _, n := range names {
		if _, ok := l.Workspace.Environment(n); !ok {
			errs = append(errs, unknownEnvironment("", n, known))
		}
	}
	return errs.Err()
}

// unknownEnvironment says name is no environment; from is the variable
// that named it ("" for a flag or argument).
func unknownEnvironment(from, name string, known []string) diag.Diagnostic {
	msg := fmt.Sprintf("unknown environment %q", name)
	if from != "" {
		msg += " from " + from
	}
	if s := suggest.Closest(name, known); s != "" {
		msg += fmt.Sprintf("; did you mean %s?", s)
	}
	return diag.Errorf(diag.Pos{File: workspace.FileName}, "%s (known: %s)", msg, strings.Join(known, ", "))
}

// loadFor loads the workspace and picks the environment a command runs
// for: flag, else ENVPLANE_ENV or config.env.select (see environment).
func (a *app) loadFor(flag, service string) (*loaded, string, error) {
	l, err := a.load()
	if err != nil {
		return nil, "", err
	}
	env, err := a.environment(l, flag, service)
	if err != nil {
		return nil, "", err
	}
	return l, env, nil
}
